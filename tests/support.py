"""Test helpers: the real server as a subprocess, and real aiohttp receivers."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
# Tests point webhooks at receivers on loopback over plain HTTP.
PERMISSIVE = ("--allow-private-urls", "--allowed-schemes", "http,https")
# A publishEvent body over REST: a model version created.
EVENT_JSON = {
    "event": {"entity": "MODEL_VERSION", "action": "CREATED"},
    "data": {
        "name": "churn",
        "version": "3",
        "source": "models:/churn/3",
        "run_id": None,
        "tags": {},
        "description": None,
    },
}
# An HTTP request that stops in the middle of its headers, as a slow client's does.
HALF_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
START_TIMEOUT = 30.0


@dataclass
class ServerProcess:
    """`python -m server` on free ports; stdout is read until both listening lines appear."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    grpc_address: str = ""
    http_url: str = ""
    stderr_path: Path | None = None
    database: Any = None  # the tests.databases.Database it runs on, when a fixture made it
    # (soft, hard) RLIMIT_NOFILE for the server, set by prlimit(1) before it execs the server:
    # never a preexec_fn, which forks this process while gRPC's threads run, and gRPC's fork
    # handlers can then break the child before it execs.
    open_files: tuple[int, int] | None = None
    # In place of `python -m server --grpc-address 127.0.0.1:0 --http-address 127.0.0.1:0`:
    # a command that starts the server some other way (a doc's `make run`); it gets the free
    # ports through the environment, which its flags may override.
    command: list[str] | None = None
    cwd: Path = ROOT

    def start(self, workdir: Path) -> ServerProcess:
        self.stderr_path = workdir / f"server-{os.getpid()}-{id(self)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.command is None:
            command = [sys.executable, "-m", "mlflow_webhooks.server"]
            command += ["--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"]
        else:
            command = self.command
            env = {
                "WEBHOOKS_GRPC_ADDRESS": "127.0.0.1:0",
                "WEBHOOKS_HTTP_ADDRESS": "127.0.0.1:0",
                **env,
            }
        if self.open_files is not None:
            command = ["prlimit", "--nofile={}:{}".format(*self.open_files), "--", *command]
        self.proc = subprocess.Popen(
            [*command, *self.args],
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.stderr_path.open("w"),
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        while not (self.grpc_address and self.http_url):
            try:
                line = lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"server did not start: {self.log()}") from None
            if not line:
                raise RuntimeError(f"server exited: {self.log()}")
            if line.startswith("grpc listening on "):
                self.grpc_address = line.split()[-1]
            elif line.startswith("http listening on "):
                self.http_url = "http://" + line.split()[-1]
        return self

    def log(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def run_server(
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    open_files: tuple[int, int] | None = None,
) -> ServerProcess:
    return ServerProcess(list(args), env or {}, open_files=open_files).start(workdir)


def own_server(
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    open_files: tuple[int, int] | None = None,
) -> ServerProcess:
    """A server of its own on a fresh SQLite file in `workdir`, taking loopback HTTP
    receivers; `args` come last, so they win over these defaults."""
    database = f"sqlite:///{workdir}/webhooks.db"
    return run_server(
        workdir, *PERMISSIVE, "--database-url", database, *args, env=env, open_files=open_files
    )


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real aiohttp receiver on a free loopback port, recording what it is sent.

    /ok answers 200, /status/{code} answers that code, /redirect answers 302, /slow waits
    until the receiver stops (so the sender's timeout fires), /close drops the connection,
    /flaky/{n} fails each delivery's first n attempts with 503, /retry-after/{s} answers a
    delivery's first attempt 429 with Retry-After: s, /delay/{s} answers 200 after s seconds,
    /hold answers 200 once the test sets `gate`, /script answers what the test's `script`
    makes of the request (recorded first, like every other).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._seen: Counter[str] = Counter()
        self.arrived = asyncio.Condition()
        self._release = asyncio.Event()
        self.gate = asyncio.Event()
        self.script: Callable[[Received], Awaitable[web.StreamResponse]] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.port = 0

    async def _record(self, request: web.Request) -> Received:
        body = await request.read()
        received = Received(request.path, dict(request.headers), body)
        async with self.arrived:
            self.received.append(received)
            self.arrived.notify_all()
        return received

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = await self._record(request)
        kind = request.match_info["kind"]
        if kind == "script" and self.script is not None:
            return await self.script(received)
        if kind == "ok":
            return web.Response(text="ok")
        if kind == "status":
            code = int(request.match_info["arg"])
            return web.Response(status=code, text=f"answered {code}")
        if kind == "flaky":
            # Fails the first `arg` attempts of each delivery, then succeeds.
            delivery = request.headers.get("webhook-id", "")
            self._seen[delivery] += 1
            if self._seen[delivery] <= int(request.match_info["arg"]):
                return web.Response(status=503, text="not yet")
            return web.Response(text="ok")
        if kind == "retry-after":
            delivery = request.headers.get("webhook-id", "")
            self._seen[delivery] += 1
            if self._seen[delivery] == 1:
                headers = {"Retry-After": request.match_info["arg"]}
                return web.Response(status=429, headers=headers, text="slow down")
            return web.Response(text="ok")
        if kind == "delay":
            await asyncio.sleep(float(request.match_info["arg"]))
            return web.Response(text="ok")
        if kind == "redirect":
            raise web.HTTPFound(location="http://127.0.0.1:1/elsewhere")
        if kind == "hold":
            await self.gate.wait()
            return web.Response(text="ok")
        if kind == "slow":
            await self._release.wait()
            return web.Response(text="late")
        if kind == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return web.Response(status=404, text="no such receiver endpoint")

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> Receiver:
        """Listens on `host` (any 127/8 address works on Linux, standing in for a private
        network) and `port` (0: a free one), over HTTPS when given `ssl_context`."""
        app = web.Application()
        app.router.add_post("/{kind}", self._handle)
        app.router.add_post("/{kind}/{arg}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if ssl_context else 'http'}://{host}:{self.port}"
        return self

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.received) >= count), timeout
            )
        return self.received

    def bodies(self, path: str) -> list[dict]:
        return [json.loads(r.body) for r in self.received if r.path == path]

    def delivery_ids(self, path: str | None = None) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received if path in (None, r.path)]

    async def stop(self) -> None:
        self._release.set()
        self.gate.set()
        if self._runner:
            await self._runner.cleanup()


class Turns:
    """A Receiver's script for ordered delivery, whose events carry `data.version`: it
    answers 503 to the first fail[v] attempts of version v, leaves the first attempt of a
    version in `hold` unanswered until `release` is set, and takes every other attempt
    (200) after `delay` seconds. It records the versions in the order they arrived and were
    taken, and the most attempts it had in hand at once."""

    def __init__(
        self, fail: dict[str, int] | None = None, hold: set[str] | None = None, delay: float = 0.0
    ) -> None:
        self.fail = fail or {}
        self.hold = hold or set()
        self.delay = delay
        self.arrived: list[str] = []
        self.taken: list[str] = []
        self.most_in_hand = 0
        self.release = asyncio.Event()
        self.changed = asyncio.Condition()
        self._in_hand = 0

    async def __call__(self, received: Received) -> web.StreamResponse:
        version = str(json.loads(received.body)["data"]["version"])
        async with self.changed:
            self.arrived.append(version)
            attempt = self.arrived.count(version)
            self.changed.notify_all()
        self._in_hand += 1
        self.most_in_hand = max(self.most_in_hand, self._in_hand)
        try:
            if attempt <= self.fail.get(version, 0):
                return web.Response(status=503, text="not yet")
            if attempt == 1 and version in self.hold:
                await self.release.wait()
                return web.Response(status=503, text="released")
            await asyncio.sleep(self.delay)
            async with self.changed:
                self.taken.append(version)
                self.changed.notify_all()
            return web.Response(text="ok")
        finally:
            self._in_hand -= 1

    async def wait(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(done), timeout)


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhooks test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
