"""The web console: static pages and ES modules under /ui/, served by the HTTP port.

It holds no data and knows nothing of the core or the store: its scripts call the public
REST API from the browser like any other client, with the user's bearer token. So its pages
and assets are served without a token (auth names these routes open), and every page path
answers the same index.html, so that a bookmark or a reload of any page works."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from mlflow_webhooks.server.auth import OPEN_ROUTE_PREFIX as OPEN_ROUTE

STATIC = Path(__file__).parent / "static"
PAGES = {
    "home": "/ui/",
    "webhook": "/ui/webhooks/{webhook_id}",
    "delivery": "/ui/deliveries/{delivery_id}",
}
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
# The browser may load scripts, styles and data from this origin only: no CDN, no inline
# script, no frame embedding, and every fetch goes back to the service itself.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidated on every load (cheap with the ETag), so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _assets() -> dict[str, Asset]:
    """Every file under static/, read once: only these names are ever served, so no request
    path reaches the file system."""
    found = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            found[path.relative_to(STATIC).as_posix()] = Asset(
                body,
                content_type or "application/octet-stream",
                '"' + hashlib.sha256(body).hexdigest()[:20] + '"',
            )
    return found


def _respond(request: web.Request, asset: Asset) -> web.Response:
    headers = {**HEADERS, "ETag": asset.etag}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    return web.Response(
        body=asset.body, content_type=asset.content_type, charset=charset, headers=headers
    )


def add_routes(app: web.Application) -> None:
    assets = _assets()
    index = assets["index.html"]

    async def page(request: web.Request) -> web.Response:
        return _respond(request, index)

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return _respond(request, found)

    async def bare(_: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/ui/")

    app.router.add_get("/ui", bare, name=f"{OPEN_ROUTE}console-root")
    for name, path in PAGES.items():
        app.router.add_get(path, page, name=f"{OPEN_ROUTE}console-{name}")
    app.router.add_get("/ui/assets/{name:.+}", asset, name=f"{OPEN_ROUTE}console-asset")
