"""The aiohttp application of the shim: every route of every service, /health and
/openapi.json, and MLflow's JSON error bodies for everything that goes wrong."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from mlflow_webhooks.server import observe
from mlflow_webhooks.server.errors import ServiceError
from mlflow_webhooks.server.shim import guards, mapping
from mlflow_webhooks.server.shim.guards import HostRule
from mlflow_webhooks.server.shim.mapping import Failure
from mlflow_webhooks.server.shim.openapi import document
from mlflow_webhooks.server.shim.routes import Route, routes

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_REQUEST_BYTES = web.AppKey("max_request_bytes", int)


def _json(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def _failure_response(failure: Failure) -> web.Response:
    return _json(json.dumps(failure.body()).encode(), failure.status, failure.headers)


def _from_http(error: web.HTTPException, request: web.Request) -> Failure:
    """aiohttp's own refusals (no route, wrong method, body too large) in MLflow's form."""
    if error.status == 404:
        return Failure(404, "ENDPOINT_NOT_FOUND", f"No API endpoint at {request.path}.")
    if error.status == 405:
        allowed = error.headers.get("Allow", "")
        return Failure(
            405,
            "ENDPOINT_NOT_FOUND",
            f"{request.method} is not allowed on {request.path}; allowed: {allowed}.",
            {"Allow": allowed},
        )
    if error.status == 413:
        return Failure(
            413,
            "RESOURCE_EXHAUSTED",
            f"The request body is larger than {request.app[MAX_REQUEST_BYTES]} bytes.",
        )
    return Failure(error.status, "BAD_REQUEST", error.reason)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Failure as failure:
        if failure.status >= 500:
            log.error("%s %s: %s", request.method, request.path, failure.message)
        return _failure_response(failure)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _failure_response(_from_http(e, request))
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return _failure_response(
            Failure(500, "INTERNAL_ERROR", "Internal error; the server log has the details.")
        )


def _handler(route: Route, draining: Callable[[], bool]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if draining():
            raise Failure(503, "TEMPORARILY_UNAVAILABLE", "The server is shutting down.")
        if request.method == "GET":
            fields = mapping.query_fields(route.request_type, request.query.items())
        else:
            body = await request.read()
            content_type = request.headers.get("Content-Type")
            if body and not guards.is_json(content_type):
                raise Failure(
                    415,
                    "INVALID_PARAMETER_VALUE",
                    "The request body must be JSON, sent with 'Content-Type: application/json' "
                    f"(got {content_type or 'no Content-Type'!r:.80}).",
                )
            fields = mapping.parse_body(body)
        message = mapping.to_message(route.request_class, fields, request.match_info)
        try:
            response = await route.call(message)
        except ServiceError as e:
            raise Failure.of(e) from None
        return _json(mapping.to_json(response))

    return handle


def _host_guard(hosts: HostRule) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def only_allowed_hosts(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if hosts.allows(host):
            return await handler(request)
        return _failure_response(
            Failure(
                403,
                "PERMISSION_DENIED",
                f"Host {host!r:.100} is not served here: this server answers loopback names "
                "(localhost, 127.0.0.1, [::1]) and those of --allowed-hosts only, so that web "
                "pages cannot reach it by DNS rebinding. Start it with --allowed-hosts NAME "
                "to answer another name.",
            )
        )

    return only_allowed_hosts


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Logs and counts every request once, with its request id, whatever answered it."""
    started = time.perf_counter()
    rid = observe.request_id(request.headers.get("X-Request-Id"))
    response = await handler(request)
    response.headers["X-Request-Id"] = rid
    route = request.match_info.route.resource
    method = observe.rest_method(request.method, route.canonical if route else None)
    observe.record_call("rest", method, str(response.status), started, rid, request.remote)
    return response


def build(
    servicers: Mapping[str, object],
    draining: Callable[[], bool],
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    metrics: Callable[[], Awaitable[bytes]] | None = None,
    auth: Callable[..., Awaitable[web.StreamResponse]] | None = None,
    database_answers: Callable[[], bool] = lambda: True,
    hosts: HostRule | None = None,
) -> web.Application:
    """`servicers` maps a full service name ("mlflow.WebhookService") to its servicer;
    `metrics` renders GET /metrics; `auth`, when given, guards every route but /health;
    `database_answers` says whether the background database probe last succeeded; `hosts`
    says which Host headers are answered (all when None)."""
    found = routes(servicers)
    for route in found:  # the response converters, compiled once, now
        mapping.compiled(route.response_type)
    openapi = json.dumps(document(found), indent=2).encode()

    async def health(_: web.Request) -> web.Response:
        if draining():
            return web.json_response({"status": "draining"}, status=503)
        if not database_answers():
            return web.json_response({"status": "database unavailable"}, status=503)
        return web.json_response({"status": "serving"})

    async def openapi_json(_: web.Request) -> web.Response:
        return _json(openapi)

    middlewares = [
        _observe,
        *([_host_guard(hosts)] if hosts is not None and not hosts.any_host else []),
        *([auth] if auth else []),
        _errors,
    ]
    app = web.Application(middlewares=middlewares, client_max_size=max_request_bytes)
    app[MAX_REQUEST_BYTES] = max_request_bytes
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi_json)
    if metrics is not None:

        async def metrics_text(_: web.Request) -> web.Response:
            body = await metrics()
            return web.Response(body=body, headers={"Content-Type": observe.CONTENT_TYPE})

        app.router.add_get("/metrics", metrics_text)
    # One resource per path with all its methods, so a wrong method is a 405 naming them all.
    by_path: dict[str, dict[str, Handler]] = {}
    for route in found:
        for path in route.prefixed():
            by_path.setdefault(path, {})[route.method] = _handler(route, draining)
    for path, methods in by_path.items():
        resource = app.router.add_resource(path)
        for method, handler in methods.items():
            resource.add_route(method, handler)
    return app
