"""The HTTP listener's connection guard in-process, on real loopback sockets: the cap's
default, the descriptors it may hold, and its accept errors. tests/test_security.py checks
it in a real server under the open-files limit."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from pathlib import Path

import pytest

from mlflow_webhooks.server.shim import connections
from mlflow_webhooks.server.shim.connections import ConnectionGuard, default_max_connections
from tests.support import HALF_REQUEST, make_certificates


@pytest.mark.parametrize(
    ("open_files", "cap"), [(64, 16), (256, 78), (1024, 462), (20, 16), (10**6, 10_000)]
)
def test_default_max_connections_stays_below_the_open_files_limit(
    open_files: int, cap: int
) -> None:
    assert default_max_connections(open_files) == cap


class Answering(asyncio.Protocol):
    """What the guard hands admitted connections to: answers 200 at the headers' end."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if data.endswith(b"\r\n\r\n"):
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def listening() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0), backlog=1024)


async def test_a_flood_holds_at_most_the_cap_plus_one_burst() -> None:
    limit, burst, clients = 2, 3, 40
    guard = ConnectionGuard(Answering, limit, header_timeout=60, burst=burst)
    sock = listening()
    guard.start(sock)
    most_held = 0
    flooding = True

    async def watch() -> None:
        # Between loop iterations, which is where the guard's counts can be seen.
        nonlocal most_held
        while flooding:
            most_held = max(most_held, guard.held)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    streams = []
    try:
        for _ in range(clients):
            reader, writer = await asyncio.open_connection(*sock.getsockname())
            writer.write(HALF_REQUEST)
            streams.append((reader, writer))
        # Each newcomer closed the one that had waited longest for its headers: all but the
        # last `limit` are answered 408, and those two are still open.
        answers = await asyncio.wait_for(
            asyncio.gather(*(reader.read() for reader, _ in streams[:-limit])), 30
        )
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers)
        for reader, writer in streams[-limit:]:
            writer.write(b"\r\n\r\n")
            assert (await asyncio.wait_for(reader.readline(), 30)).startswith(b"HTTP/1.1 200")
        assert guard.open == limit
    finally:
        flooding = False
        await watcher
        for _, writer in streams:
            writer.close()
        guard.stop()
    assert 0 < most_held <= limit + burst


async def test_when_none_is_waiting_a_newcomer_is_answered_busy() -> None:
    guard = ConnectionGuard(Answering, 1, header_timeout=60)
    sock = listening()
    guard.start(sock)
    try:
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 30)).startswith(b"HTTP/1.1 200")
        other, _ = await asyncio.open_connection(*sock.getsockname())
        assert (await asyncio.wait_for(other.read(), 30)).startswith(b"HTTP/1.1 503 ")
        assert (guard.open, guard.held) == (1, 1)
        writer.close()
    finally:
        guard.stop()


async def test_over_tls_a_failed_handshake_gives_its_place_back(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    guard = ConnectionGuard(Answering, 1, header_timeout=60)
    sock = listening()
    guard.start(sock, server_side)
    try:
        # Not TLS: the handshake fails, and the connection is counted out, unanswered.
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        await asyncio.wait_for(reader.read(), 30)
        writer.close()
        # So the one place is free for a TLS client, which is served.
        client_side = ssl.create_default_context(cafile=ca)
        reader, writer = await asyncio.open_connection(*sock.getsockname(), ssl=client_side)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 30)).startswith(b"HTTP/1.1 200")
        assert (guard.open, guard.held) == (1, 1)
        writer.close()
    finally:
        guard.stop()


async def test_accept_errors_are_logged_once_per_period(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "ACCEPT_RETRY_SECONDS", 0.001)
    enough = asyncio.Event()

    class Exhausted(socket.socket):
        """A listening socket whose accept() fails as when descriptors run out."""

        failures = 0

        def accept(self) -> tuple[socket.socket, object]:
            self.failures += 1
            if self.failures == 100:
                enough.set()
            raise OSError(errno.EMFILE, "Too many open files")

    sock = Exhausted(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    guard = ConnectionGuard(Answering, 4)
    guard.start(sock)
    client = socket.create_connection(sock.getsockname())  # keeps the socket readable
    try:
        # Accepting is tried again after each failure, and the failures are one line.
        await asyncio.wait_for(enough.wait(), 30)
    finally:
        guard.stop()
        client.close()
    lines = [r.getMessage() for r in caplog.records if "cannot accept" in r.getMessage()]
    assert lines == [
        "cannot accept connections: Too many open files (0 more such failures since the last "
        "line); lower --max-connections or raise the open-files limit"
    ]
