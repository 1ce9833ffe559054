"""The HTTP listener's defence against slow and numerous clients.

aiohttp gives a connection an hour (its keep-alive timeout) to send a request and accepts
connections until the process runs out of file descriptors; then every accept fails, health
checks time out, and asyncio logs each failure. So, below aiohttp, at the protocol level:

- a connection must send its first request's headers within HEADER_TIMEOUT of connecting
  (a slow sender of a later request is closed by aiohttp's keep-alive timeout), else it is
  answered 408 and closed;
- at most `limit` connections are open: at the cap, the one that has waited longest for its
  headers is closed to make room, and when none is waiting the new connection is answered
  503 and closed, so that the file descriptors never run out under the server's feet;
- the open-files soft limit is raised to the hard limit at start, and the cap's default
  leaves room for one accept burst and half the rest to gRPC, the database and deliveries;
- accept errors that do happen are logged once every few seconds, not once per attempt."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
from collections.abc import Callable
from typing import Any

from mlflow_webhooks.server.observe import Throttle

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds from connecting to the end of the first request's headers
MAX_DEFAULT_CONNECTIONS = 10_000  # beyond this, memory runs out before descriptors do
# asyncio accepts up to this many connections in one go (and listens with it as the
# backlog); connections closed to make room give their descriptors back only after that
# burst, so the descriptors in use can briefly reach the cap plus this many.
ACCEPT_BURST = 100
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\n\r\n"
)
# accept() fails with these when descriptors or kernel memory run out.
RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def raise_open_files_limit() -> int:
    """Raises the soft RLIMIT_NOFILE to the hard limit (where the system lets us); returns
    the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as e:  # e.g. macOS, where the hard limit is unlimited
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, e)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def default_max_connections(open_files: int) -> int:
    """Half of what the open-files limit leaves beside one accept burst (the other half is
    for gRPC callers, database connections and delivery sockets), at least 16 and at most
    MAX_DEFAULT_CONNECTIONS."""
    if open_files == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CONNECTIONS
    return max(16, min((open_files - ACCEPT_BURST) // 2, MAX_DEFAULT_CONNECTIONS))


class ConnectionGuard:
    """A protocol factory for loop.create_server that wraps another (aiohttp's web.Server)
    with the header deadline and the connection cap."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        limit: int,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        self.limit = limit
        self.open = 0
        self._factory = factory
        self._header_timeout = header_timeout
        # Connections still sending their first headers, oldest first.
        self._waiting: dict[_Guarded, None] = {}

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    def _admit(self, connection: _Guarded) -> bool:
        if self.open >= self.limit:
            if not self._waiting:
                return False
            oldest = next(iter(self._waiting))
            oldest.close(TIMED_OUT)
        self.open += 1
        self._waiting[connection] = None
        return True

    def _headers_done(self, connection: _Guarded) -> None:
        self._waiting.pop(connection, None)

    def _gone(self, connection: _Guarded) -> None:
        self._waiting.pop(connection, None)
        self.open -= 1


class _Guarded(asyncio.Protocol):
    """One connection: hands everything to aiohttp's protocol once admitted, watching for
    the blank line that ends the first request's headers."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, for a blank line split across reads
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._guard._admit(self):
            transport.write(BUSY)
            transport.close()
            return
        self._counted = True
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard._header_timeout, self.close, TIMED_OUT)
        self._inner = self._guard._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._deadline is not None:
            seen = self._tail + data
            if b"\n\r\n" in seen or b"\n\n" in seen:
                self._deadline.cancel()
                self._deadline = None
                self._guard._headers_done(self)
            else:
                self._tail = seen[-2:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._counted:
            self._counted = False
            self._guard._gone(self)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def close(self, answer: bytes) -> None:
        """Answers `answer` and closes: the headers took too long, or room was needed."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._counted:
            # Counted out now: the descriptor is released within this loop iteration.
            self._counted = False
            self._guard._gone(self)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer)
            self._transport.close()


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Makes the loop log accept() failing for want of resources once every few seconds
    (asyncio logs each failure with a traceback and retries at once, many times a second)."""
    throttle = Throttle()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in RESOURCE_ERRORS:
            dropped = throttle("accept")
            if dropped is not None:
                log.error(
                    "cannot accept connections: %s (%d more such failures since the last "
                    "line); lower --max-connections or raise the open-files limit",
                    error.strerror,
                    dropped,
                )
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
