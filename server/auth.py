"""Bearer-token auth for both transports: the tokens, a gRPC interceptor and a shim
middleware. Health stays open so load balancers and orchestrators need no token."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

log = logging.getLogger(__name__)

OPEN_GRPC_PREFIX = "/grpc.health.v1.Health/"
OPEN_HTTP_PATHS = frozenset({"/health"})
# HTTP routes whose name starts with this serve no data and need no token: the web console's
# pages and assets (server/console). Decided by the route the router matched, not by the
# path's text, so no spelling of a path can reach an API route through it.
OPEN_ROUTE_PREFIX = "open:"
REFUSAL = (
    "Missing or wrong bearer token: send 'Authorization: Bearer TOKEN' "
    "(gRPC: 'authorization' metadata)."
)


class Tokens:
    """The accepted tokens: one from --auth-token, and those of --auth-token-file (one a
    line), which reload() reads again so tokens rotate without a restart."""

    def __init__(self, token: str | None, token_file: str | None) -> None:
        self._token = token
        self._file = Path(token_file) if token_file else None
        self._accepted: tuple[bytes, ...] = ()
        self.reload()

    @property
    def enabled(self) -> bool:
        return bool(self._token or self._file)

    def reload(self) -> None:
        tokens = [self._token] if self._token else []
        if self._file is not None:
            from_file: list[str] = []
            try:
                lines = self._file.read_text().splitlines()
            except OSError as e:
                problem = f"cannot read --auth-token-file {self._file}: {e.strerror}"
            else:
                from_file = [line.strip() for line in lines if line.strip()]
                problem = "" if from_file else f"--auth-token-file {self._file} holds no token"
            if problem:
                # Keep serving with the tokens we had: a typo or an emptied file in a rotation
                # must not lock everyone out. At start there are none yet, so the start fails
                # (app.py).
                if not self._accepted:
                    raise OSError(f"{problem} (one token a line)")
                log.error("%s; keeping the tokens read before", problem)
                return
            tokens += from_file
        self._accepted = tuple(t.encode() for t in tokens)
        if self.enabled:
            log.info("auth: %d token(s) accepted", len(self._accepted))

    def allows(self, authorization: str | None) -> bool:
        if not self.enabled:
            return True
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        candidate = presented.strip().encode()
        # Compare against every token, in constant time each, so timing tells nothing.
        matches = [hmac.compare_digest(candidate, token) for token in self._accepted]
        return any(matches)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Tokens) -> None:
        self._tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method.startswith(OPEN_GRPC_PREFIX):
            return await continuation(details)
        metadata = dict(details.invocation_metadata or ())
        if self._tokens.allows(metadata.get("authorization")):
            return await continuation(details)
        return _refusal(await continuation(details))


def _refusal(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that answers UNAUTHENTICATED."""

    async def refuse(_: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)

    if handler is None:
        return grpc.unary_unary_rpc_method_handler(refuse)
    shape = grpc.unary_unary_rpc_method_handler
    if handler.stream_stream is not None:
        shape = grpc.stream_stream_rpc_method_handler
    elif handler.unary_stream is not None:
        shape = grpc.unary_stream_rpc_method_handler
    elif handler.stream_unary is not None:
        shape = grpc.stream_unary_rpc_method_handler
    return shape(refuse, handler.request_deserializer, handler.response_serializer)


def middleware(tokens: Tokens) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def require_token(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route_name = request.match_info.route.name or ""
        if (
            request.path in OPEN_HTTP_PATHS
            or route_name.startswith(OPEN_ROUTE_PREFIX)
            or tokens.allows(request.headers.get("Authorization"))
        ):
            return await handler(request)
        return web.json_response(
            {"error_code": "UNAUTHENTICATED", "message": REFUSAL},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    return require_token
