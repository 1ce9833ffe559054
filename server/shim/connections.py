"""The HTTP listener's defence against slow and numerous clients.

aiohttp gives a connection an hour (its keep-alive timeout) to send a request and accepts
connections until the process runs out of file descriptors; then every accept fails, health
checks time out, and asyncio logs each failure. So the guard accepts on the listening socket
itself, below aiohttp:

- a connection must send its first request's headers within HEADER_TIMEOUT of being
  accepted (its TLS handshake included; a slow sender of a later request is closed by
  aiohttp's keep-alive timeout), else it is answered 408 and closed;
- at most `limit` connections are open: at the cap, the one that has waited longest for its
  headers is closed to make room, and when none is waiting the new connection is answered
  503 and closed;
- every descriptor is counted from accept() until it is released, and accepting pauses
  while `limit` plus one accept burst are held (closed connections release theirs a loop
  iteration later), so the HTTP side never holds more than that. asyncio's own accept loop
  (loop.create_server) hands sockets on only an iteration or two after accepting them, by
  when it may have accepted another burst or two: under a flood of connections the
  descriptors ran out all the same;
- the open-files soft limit is raised to the hard limit at start, and the cap's default
  leaves room for one accept burst and half the rest to gRPC, the database and deliveries;
- accept errors that do happen are logged once every few seconds, not once per attempt."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import ssl
from collections.abc import Callable

from mlflow_webhooks.server.observe import Throttle

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds from accepting to the end of the first request's headers
MAX_DEFAULT_CONNECTIONS = 10_000  # beyond this, memory runs out before descriptors do
# The most connections accepted in one go; the guard holds at most the cap plus this many
# descriptors (the rest wait in the kernel's listen queue).
ACCEPT_BURST = 100
# After accept() fails for want of resources, accepting waits this long (as asyncio does).
ACCEPT_RETRY_SECONDS = 1.0
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
    """Accepts connections on a listening socket and hands each to another protocol
    factory (aiohttp's web.Server) behind the header deadline and the connection cap."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        limit: int,
        header_timeout: float = HEADER_TIMEOUT,
        burst: int = ACCEPT_BURST,
    ) -> None:
        self.limit = limit
        self.open = 0  # admitted connections, until closed
        self.held = 0  # accepted sockets, until their descriptor is released
        self._factory = factory
        self._header_timeout = header_timeout
        self._burst = burst
        # Connections still sending their first headers, oldest first.
        self._waiting: dict[_Guarded, None] = {}
        self._starting: set[asyncio.Task[None]] = set()
        self._throttle = Throttle()
        self._sock: socket.socket | None = None
        self._ssl: ssl.SSLContext | None = None
        self._accepting = False
        self._full = False  # paused until a held descriptor is released

    def start(self, sock: socket.socket, ssl_context: ssl.SSLContext | None = None) -> None:
        """Starts accepting on `sock`, a listening socket."""
        self._sock = sock
        self._ssl = ssl_context
        sock.setblocking(False)
        self._resume()

    def stop(self) -> None:
        """Stops accepting and closes the listening socket. Open connections are aiohttp's
        to close; connections still starting (in their TLS handshake) are dropped."""
        self._pause()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for task in self._starting:
            task.cancel()

    def _resume(self) -> None:
        if self._sock is not None and not self._accepting:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._accept)
            self._accepting = True

    def _pause(self) -> None:
        if self._sock is not None and self._accepting:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._accepting = False

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(self._burst):
            if self.held >= self.limit + self._burst:
                self._pause()
                self._full = True
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # that connection went before it was accepted
            except OSError as error:
                self._accept_failed(error)
                return
            self._start(conn)

    def _accept_failed(self, error: OSError) -> None:
        """Logs (at most once every few seconds) and waits before accepting again, instead
        of failing again at once for as long as the cause lasts."""
        dropped = self._throttle("accept")
        if dropped is not None:
            hint = (
                "; lower --max-connections or raise the open-files limit"
                if error.errno in RESOURCE_ERRORS
                else ""
            )
            log.error(
                "cannot accept connections: %s (%d more such failures since the last line)%s",
                error.strerror,
                dropped,
                hint,
            )
        self._pause()
        asyncio.get_running_loop().call_later(ACCEPT_RETRY_SECONDS, self._resume)

    def _start(self, conn: socket.socket) -> None:
        self.held += 1
        connection = _Guarded(self)
        if self.open >= self.limit and self._waiting:
            next(iter(self._waiting)).close(TIMED_OUT)
        if self.open < self.limit:
            self.open += 1
            self._waiting[connection] = None
            connection.admitted(self._header_timeout)
        else:
            connection.close(BUSY)
        task = asyncio.get_running_loop().create_task(self._connect(conn, connection))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _connect(self, conn: socket.socket, connection: _Guarded) -> None:
        """Makes the socket's transport (after the TLS handshake, when serving TLS)."""
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: connection,
                conn,
                ssl=self._ssl,
                ssl_handshake_timeout=self._header_timeout if self._ssl else None,
            )
        except BaseException as error:
            # A TLS handshake that failed or took too long, or shutdown: the protocol may
            # never hear of the loss from a transport, so it hears of it from here (closing
            # twice and connection_lost twice are harmless).
            conn.close()
            connection.connection_lost(None)
            if not isinstance(error, Exception):
                raise

    def _headers_done(self, connection: _Guarded) -> None:
        self._waiting.pop(connection, None)

    def _closed(self, connection: _Guarded) -> None:
        self._waiting.pop(connection, None)
        self.open -= 1

    def _released(self) -> None:
        self.held -= 1
        if self._full and self.held < self.limit + self._burst:
            self._full = False
            self._resume()


class _Guarded(asyncio.Protocol):
    """One connection: hands everything to aiohttp's protocol once admitted, watching for
    the blank line that ends the first request's headers."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, for a blank line split across reads
        self._counted = False  # in the guard's open connections
        self._held = True  # in the guard's held descriptors
        self._answer: bytes | None = None  # to close with once the transport is made

    def admitted(self, header_timeout: float) -> None:
        self._counted = True
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(header_timeout, self.close, TIMED_OUT)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._answer is not None:
            self.close(self._answer)
            return
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
        self._uncount()
        if self._held:
            self._held = False
            self._guard._released()
        if self._inner is not None:
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def close(self, answer: bytes) -> None:
        """Answers `answer` and closes (now, or once the transport is made): the headers
        took too long, room was needed, or there is none."""
        self._uncount()
        if self._transport is None:
            self._answer = answer
        elif not self._transport.is_closing():
            self._transport.write(answer)
            self._transport.close()

    def _uncount(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._counted:
            # Counted out now, to make room: its descriptor stays held until released.
            self._counted = False
            self._guard._closed(self)
