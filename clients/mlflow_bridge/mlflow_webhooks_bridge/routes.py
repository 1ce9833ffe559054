"""The bridge's HTTP routes on the MLflow server: MLflow's webhooks API forwarded to the
service, and the bridge's status. They go in front of MLflow's own routes inside MLflow's
FastAPI app, so MLflow's security middleware (allowed hosts, CORS) still applies to them."""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlflow_webhooks_bridge import spool
from mlflow_webhooks_bridge.config import Settings

_logger = logging.getLogger("mlflow.webhooks_bridge")

API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
METHODS = ["GET", "POST", "PATCH", "DELETE"]
MAX_BODY = 1024 * 1024  # the service's own default limit
TIMEOUT = 60.0  # testWebhook waits for the receiver
# Path segments after /mlflow/webhooks: webhook ids and `test`. Nothing else is forwarded, so
# no path (`..`, encoded slashes) reaches another of the service's routes with the bridge's
# token.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,128}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Endpoint = Callable[[Request], Awaitable[Response]]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _send(
    url: str, method: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def forwarder(settings: Settings, api: str) -> Endpoint:
    async def forward(request: Request) -> Response:
        rest = request.path_params.get("rest", "")
        if rest and not all(_SEGMENT.fullmatch(s) for s in rest.split("/")):
            return _error(404, "ENDPOINT_NOT_FOUND", "No webhooks endpoint at this path.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, "INVALID_PARAMETER_VALUE", "The request body is too large.")
        url = f"{settings.service_url}{api}/mlflow/webhooks" + (f"/{rest}" if rest else "")
        if request.url.query:
            url += f"?{request.url.query}"
        headers = {}
        if content_type := request.headers.get("content-type"):
            headers["Content-Type"] = content_type
        if (request_id := request.headers.get("x-request-id")) and _REQUEST_ID.fullmatch(
            request_id
        ):
            headers["X-Request-Id"] = request_id
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        try:
            status, content_type, answer = await asyncio.to_thread(
                _send, url, request.method, bytes(body) or None, headers
            )
        except (OSError, urllib.error.URLError) as e:
            reason = getattr(e, "reason", e)
            _logger.warning("webhooks bridge: the service is unreachable: %s", reason)
            return _error(
                503,
                "TEMPORARILY_UNAVAILABLE",
                f"The webhooks service is unreachable ({reason}); try again later.",
            )
        return Response(answer, status_code=status, media_type=content_type or None)

    return forward


def status_endpoint(settings: Settings) -> Endpoint:
    async def status(request: Request) -> Response:
        del request
        return JSONResponse(await asyncio.to_thread(spool.status, settings.spool_dir))

    return status


def routes(settings: Settings, static_prefix: str = "") -> list[Route]:
    found = [
        Route(
            f"{static_prefix}/webhooks-bridge/status",
            status_endpoint(settings),
            methods=["GET"],
        )
    ]
    for api in API_PREFIXES:
        base = f"{static_prefix}{api}/mlflow/webhooks"
        endpoint = forwarder(settings, api)
        found.append(Route(base, endpoint, methods=METHODS))
        found.append(Route(base + "/{rest:path}", endpoint, methods=METHODS))
    return found
