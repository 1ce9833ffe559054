"""The aiohttp application of the shim."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web


def build(servicers: Mapping[str, object], draining: Callable[[], bool]) -> web.Application:
    """`servicers` maps a full service name ("mlflow.WebhookService") to its servicer."""

    async def health(_: web.Request) -> web.Response:
        if draining():
            return web.json_response({"status": "draining"}, status=503)
        return web.json_response({"status": "serving"})

    app = web.Application()
    app.router.add_get("/health", health)
    return app
