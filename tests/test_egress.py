"""Egress end to end (issue 15): --egress-allow against receivers on loopback aliases, which
stand in for private networks (Linux routes all of 127/8 to lo), a host name whose address
changes between create and send, and deliveries through real CONNECT proxies.

Names are resolved through nss_wrapper (Debian's libnss-wrapper, which `make test`
installs): preloaded into the server process only, it answers getaddrinfo from a hosts file
the test rewrites, so the server runs unchanged, with no test hook and no /etc/hosts edit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhooks_pb2 as pb
from tests.support import Receiver, ServerProcess, make_certificates, run_server
from tests.test_delivery import Api, make_api
from tests.test_operations import metric, scrape

QUICK = ("--allowed-schemes", "http,https", "--delivery-timeout", "5")


def server(workdir: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """A server of its own on SQLite, without --allow-private-urls unless `args` say so."""
    database = f"sqlite:///{workdir}/webhooks.db"
    return run_server(workdir, *QUICK, "--database-url", database, *args, env=env)


@contextlib.asynccontextmanager
async def api_of(proc: ServerProcess) -> AsyncIterator[Api]:
    try:
        async with grpc.aio.insecure_channel(proc.grpc_address) as channel:
            yield make_api(proc, channel)
    finally:
        proc.stop()


@contextlib.asynccontextmanager
async def receiver_on(host: str, **start: object) -> AsyncIterator[Receiver]:
    receiver = await Receiver().start(host, **start)  # type: ignore[arg-type]
    try:
        yield receiver
    finally:
        await receiver.stop()


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return e.value


# -- --egress-allow ------------------------------------------------------------------------


async def test_only_the_allowed_private_receiver_is_reached(tmp_path: Path) -> None:
    async with (
        receiver_on("127.0.0.2") as allowed,
        receiver_on("127.0.0.3") as other,
        api_of(server(tmp_path, "--egress-allow", "127.0.0.2")) as api,
    ):
        hook = await api.webhook(f"{allowed.url}/ok")
        error = await refused(api.webhook(f"{other.url}/ok"))
        assert "127.0.0.3" in error.details()
        assert "private rule" in error.details() and "--egress-allow" in error.details()
        # An update to the refused receiver is refused too, and changes nothing.
        update = pb.UpdateWebhook(webhook_id=hook.webhook_id, url=f"{other.url}/ok")
        await refused(api.hooks.updateWebhook(update))

        published = await api.publish()
        assert len(published.delivery_ids) == 1
        delivery = await api.settled(published.delivery_ids[0])
        assert delivery.status == dpb.SUCCEEDED
        assert len(await allowed.wait_for(1)) == 1 and other.received == []

        text = await scrape(api.server)
        assert metric(text, "webhooks_egress_refusals_total", rule="private", stage="create") == 2


async def test_metadata_address_refused_though_a_cidr_holds_it(tmp_path: Path) -> None:
    proc = server(tmp_path, "--egress-allow", "127.0.0.0/8,169.254.0.0/16,100.64.0.0/10")
    async with api_of(proc) as api:
        for url in ("http://169.254.169.254/latest/meta-data/", "http://100.100.100.200/"):
            error = await refused(api.webhook(url))
            assert "metadata rule" in error.details()
            assert "--egress-allow" in error.details()
        text = await scrape(api.server)
        assert metric(text, "webhooks_egress_refusals_total", rule="metadata", stage="create") == 2


def nss_wrapper_env(hosts: Path) -> dict[str, str]:
    """The environment that makes a process resolve names from `hosts`; the test fails
    clearly when the library is missing (`make test` installs it)."""
    env = {"LD_PRELOAD": "libnss_wrapper.so", "NSS_WRAPPER_HOSTS": str(hosts)}
    hosts.write_text("127.0.0.9 probe.egress.test\n")
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; print(socket.gethostbyname('probe.egress.test'))"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.stdout.strip() != "127.0.0.9":
        pytest.skip(f"nss_wrapper is not installed (apt-get install libnss-wrapper): {probe}")
    return env


def point(hosts: Path, name: str, address: str) -> None:
    """Changes what `name` resolves to: written aside and renamed, so a lookup never reads a
    half-written file (nss_wrapper reloads the file when it changes)."""
    staged = hosts.with_suffix(".new")
    staged.write_text(f"{address} {name}\n")
    staged.replace(hosts)


async def test_a_name_that_moves_to_a_refused_address_is_refused_at_connect(
    tmp_path: Path,
) -> None:
    hosts = tmp_path / "hosts"
    env = nss_wrapper_env(hosts)
    point(hosts, "hooks.corp.test", "127.0.0.2")
    async with contextlib.AsyncExitStack() as stack:
        allowed = await stack.enter_async_context(receiver_on("127.0.0.2"))
        # The same port on the refused address, so only the name's address changes.
        other = await stack.enter_async_context(receiver_on("127.0.0.3", port=allowed.port))
        proc = server(tmp_path, "--egress-allow", "127.0.0.2", "--retry-schedule", "0.05", env=env)
        api = await stack.enter_async_context(api_of(proc))
        url = f"http://hooks.corp.test:{allowed.port}/ok"
        await api.webhook(url)  # resolves to 127.0.0.2: allowed
        point(hosts, "hooks.corp.test", "127.0.0.3")

        published = await api.publish()
        delivery = await api.settled(published.delivery_ids[0])
        assert delivery.status == dpb.FAILED
        # Refused, not retried: the schedule had one retry left.
        assert len(delivery.attempts) == 1
        error = delivery.attempts[0].error
        assert "127.0.0.3" in error and "private rule" in error, error
        assert other.received == [] and allowed.received == []

        text = await scrape(api.server)
        assert metric(text, "webhooks_egress_refusals_total", rule="private", stage="connect") == 1
        # A create now resolves the new address and is refused there and then.
        await refused(api.webhook(url))


async def test_allowed_names_reach_whatever_private_address_they_have(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    env = nss_wrapper_env(hosts)
    hosts.write_text("127.0.0.3 ci.corp.test\n127.0.0.3 a.deploy.corp.test\n127.0.0.3 x.test\n")
    proc = server(tmp_path, "--egress-allow", "ci.corp.test,*.deploy.corp.test", env=env)
    async with receiver_on("127.0.0.3") as receiver, api_of(proc) as api:
        for name in ("ci.corp.test", "a.deploy.corp.test"):
            await api.webhook(f"http://{name}:{receiver.port}/ok")
        # The same address under a name not allowed, and the address itself, stay refused.
        for url in (f"http://x.test:{receiver.port}/ok", f"{receiver.url}/ok"):
            assert "private rule" in (await refused(api.webhook(url))).details()
        published = await api.publish()
        for delivery_id in published.delivery_ids:
            assert (await api.settled(delivery_id)).status == dpb.SUCCEEDED
        assert len(await receiver.wait_for(2)) == 2


# -- --egress-proxy ------------------------------------------------------------------------

PROXY_PASSWORD = "proxy-pass-7d1c0e"


@dataclass
class ProxyProcess:
    """proxy.py (PyPI), a real HTTP proxy with CONNECT, on a free loopback port."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def access_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "access_log" in line]

    def stop(self) -> None:
        # It runs worker processes of its own; they share its new process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


async def eventually(check, what: str, timeout: float = 20.0) -> None:
    """Waits, bounded, for something another process writes (a file has no event to await)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)
    assert check(), what


async def start_proxy(workdir: Path, *args: str) -> ProxyProcess:
    port_file, log = workdir / "proxy.port", workdir / "proxy.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--num-workers",
            "1",
            "--num-acceptors",
            "1",
            "--log-file",
            str(log),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "proxy.stderr").open("w"),
        start_new_session=True,
    )
    try:
        await eventually(lambda: port_file.exists() and port_file.read_text().strip(), "port")
        port = int(port_file.read_text())
        await eventually(lambda: port_is_open(port), "proxy listening")
    except BaseException:
        ProxyProcess(proc, 0, log).stop()
        raise
    return ProxyProcess(proc, port, log)


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def tls_receiver_context(workdir: Path) -> tuple[ssl.SSLContext, dict[str, str]]:
    """A receiver's TLS context from a CA the test makes, and the server environment that
    trusts that CA (OpenSSL's SSL_CERT_FILE, read by the default context aiohttp uses)."""
    ca, cert, key = make_certificates(workdir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, {"SSL_CERT_FILE": str(ca)}


async def test_deliveries_and_tests_go_through_the_proxy(tmp_path: Path) -> None:
    proxy = await start_proxy(tmp_path, "--basic-auth", f"webhooks:{PROXY_PASSWORD}")
    context, trust = tls_receiver_context(tmp_path)
    try:
        async with (
            receiver_on("127.0.0.1", ssl_context=context) as secure,
            receiver_on("127.0.0.2") as plain,
        ):
            proc = server(
                tmp_path,
                # The create-time rule still applies through a proxy.
                "--egress-allow",
                "127.0.0.0/8",
                "--egress-proxy",
                f"http://webhooks:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}",
                env=trust,
            )
            async with api_of(proc) as api:
                tls_hook = await api.webhook(f"{secure.url}/ok")
                await api.webhook(f"{plain.url}/ok")
                published = await api.publish()
                for delivery_id in published.delivery_ids:
                    delivery = await api.settled(delivery_id)
                    assert delivery.status == dpb.SUCCEEDED, delivery
                test = await api.hooks.testWebhook(pb.TestWebhook(webhook_id=tls_hook.webhook_id))
                assert test.result.success, test.result
                assert len(await secure.wait_for(2)) == 2
                assert len(await plain.wait_for(1)) == 1
            # Stopped: the proxy logs a tunnel when it closes.
            tunnels = f"CONNECT 127.0.0.1:{secure.port} "
            forwarded = f"POST 127.0.0.2:{plain.port}/ok "

            def logged() -> bool:
                lines = proxy.access_lines()
                return any(tunnels in line for line in lines) and any(
                    forwarded in line for line in lines
                )

            await eventually(logged, f"the proxy's log shows both: {proxy.access_lines()}")
            assert PROXY_PASSWORD not in proc.log()

            # Wrong credentials: the proxy's 407 is recorded as the proxy's, both for the
            # CONNECT of https and for the forwarded request of http.
            wrong = f"http://webhooks:wrong-{PROXY_PASSWORD}@127.0.0.1:{proxy.port}"
            proc = server(tmp_path, "--egress-allow", "127.0.0.0/8", "--egress-proxy", wrong)
            async with api_of(proc) as api:
                for url in (f"{secure.url}/ok", f"{plain.url}/ok"):
                    hook = await api.webhook(url)
                    test = await api.hooks.testWebhook(pb.TestWebhook(webhook_id=hook.webhook_id))
                    assert not test.result.success
                    assert (
                        f"egress proxy 127.0.0.1:{proxy.port} refused" in test.result.error_message
                    )
                    assert "HTTP 407" in test.result.error_message
                assert len(secure.received) == 2 and len(plain.received) == 1
            assert PROXY_PASSWORD not in proc.log()
    finally:
        proxy.stop()


async def test_proxy_down_fails_attempts_and_retries_on_schedule(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    proc = server(
        tmp_path,
        "--egress-allow",
        "127.0.0.2",
        "--egress-proxy",
        f"http://user:{PROXY_PASSWORD}@127.0.0.1:{port}",
        "--retry-schedule",
        "0.05,0.05",
    )
    async with receiver_on("127.0.0.2") as receiver, api_of(proc) as api:
        await api.webhook(f"{receiver.url}/ok")
        published = await api.publish()
        delivery = await api.settled(published.delivery_ids[0])
        assert delivery.status == dpb.FAILED
        assert [a.number for a in delivery.attempts] == [1, 2, 3]  # first + 2 retries
        for attempt in delivery.attempts:
            assert f"cannot connect to the egress proxy 127.0.0.1:{port}" in attempt.error
            assert PROXY_PASSWORD not in attempt.error
        assert receiver.received == []
        assert PROXY_PASSWORD not in proc.log()


class RefusingProxy:
    """An HTTP proxy that answers every request line, CONNECT included, with `status`."""

    def __init__(self) -> None:
        self.status = "403 Forbidden"
        self.requests: list[str] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.split(b"\r\n")[0].decode())
            writer.write(
                f"HTTP/1.1 {self.status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        writer.close()

    async def start(self) -> RefusingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_proxy_refusal_is_recorded_as_the_proxy_s(tmp_path: Path) -> None:
    proxy = await RefusingProxy().start()
    context, trust = tls_receiver_context(tmp_path)
    proc = server(
        tmp_path,
        "--egress-allow",
        "127.0.0.0/8",
        "--egress-proxy",
        f"http://127.0.0.1:{proxy.port}",
        "--egress-proxy-bypass",
        "127.0.0.2",
        "--retry-schedule",
        "0.05",
        env=trust,
    )
    try:
        async with (
            receiver_on("127.0.0.1", ssl_context=context) as secure,
            receiver_on("127.0.0.2") as bypassed,
            api_of(proc) as api,
        ):
            hook = await api.webhook(f"{secure.url}/ok")
            await api.webhook(f"{bypassed.url}/ok")
            published = await api.publish()
            by_url = {}
            for delivery_id in published.delivery_ids:
                delivery = await api.settled(delivery_id)
                by_url[delivery.webhook_id == hook.webhook_id] = delivery
            refused_delivery, direct = by_url[True], by_url[False]
            # A 403 is final, like a receiver's: one attempt although a retry was left.
            assert refused_delivery.status == dpb.FAILED
            assert len(refused_delivery.attempts) == 1
            error = refused_delivery.attempts[0].error
            assert f"egress proxy 127.0.0.1:{proxy.port} refused" in error
            assert "HTTP 403" in error
            assert not refused_delivery.attempts[0].HasField("response_status")
            # The bypassed receiver was sent to directly.
            assert direct.status == dpb.SUCCEEDED
            assert len(await bypassed.wait_for(1)) == 1 and secure.received == []
            assert proxy.requests == [f"CONNECT 127.0.0.1:{secure.port} HTTP/1.1"]

            test = await api.hooks.testWebhook(pb.TestWebhook(webhook_id=hook.webhook_id))
            assert not test.result.success
            assert "egress proxy" in test.result.error_message
            assert "HTTP 403" in test.result.error_message

            # A proxy that cannot reach the receiver (5xx) is retried on the schedule.
            proxy.status = "503 Service Unavailable"
            published = await api.publish()
            settled = [await api.settled(d) for d in published.delivery_ids]
            retried = next(d for d in settled if d.webhook_id == hook.webhook_id)
            assert retried.status == dpb.FAILED and len(retried.attempts) == 2
            assert all("HTTP 503" in a.error for a in retried.attempts)

            text = await scrape(api.server)
            assert (
                metric(text, "webhooks_egress_refusals_total", rule="proxy", stage="connect") == 4
            )
    finally:
        await proxy.stop()
