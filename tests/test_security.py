"""The service tried as an attacker would (issue 13): each test is one break that was found,
against a real server process over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import grpc
import pytest

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhooks_pb2 as pb
from tests.support import HALF_REQUEST, Receiver, ServerProcess, own_server, run_server
from tests.test_delivery import Api, make_api

TOKEN = "tok-5d1e9a7c3b"
MV_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
WEBHOOKS = "/api/2.0/mlflow/webhooks"
VALID = {
    "name": "valid",
    "url": "https://example.com/hook",
    # Not the event the delivery tests publish, so these webhooks get none of them.
    "events": [{"entity": "PROMPT", "action": "CREATED"}],
}


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def method_labels(exposition: str) -> set[str]:
    """Every value the `method` label takes in the exposition text."""
    return set(re.findall(r'\bmethod="([^"]*)"', exposition))


def sample(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in exposition.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
    return total


async def scrape(server: ServerProcess, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.http_url}/metrics", headers=headers) as response,
    ):
        assert response.status == 200
        return await response.text()


async def logged(server: ServerProcess, needle: str, count: int = 1) -> str:
    """The server's log once `needle` is in it `count` times: lines are written at the end
    of the loop iteration that made them, so a line can trail the answer it belongs to."""
    async with asyncio.timeout(20):
        while (log := server.log()).count(needle) < count:
            await asyncio.sleep(0.05)
    return log


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the defaults an attacker meets: no auth, bound to loopback, text logs."""
    proc = own_server(tmp_path_factory.mktemp("plain"), "--retry-schedule", "0.2,0.2")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = own_server(tmp_path_factory.mktemp("guarded"), "--auth-token", TOKEN)
    yield proc
    proc.stop()


@pytest.fixture
async def api(plain: ServerProcess) -> AsyncIterator[Api]:
    async with grpc.aio.insecure_channel(plain.grpc_address) as channel:
        api = make_api(plain, channel)
        yield api
        await api.forget()


# -- 1. metric labels -----------------------------------------------------------------------


async def made_up_calls(server: ServerProcess, metadata: tuple, tag: str, count: int) -> None:
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        for i in range(count):
            for service in ("mlflow.WebhookService", f"made.up.{tag}Service{i}"):
                call = channel.unary_unary(f"/{service}/madeUp{tag}{i}")
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call(b"", metadata=metadata, timeout=10)
                assert refused.value.code() in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.UNIMPLEMENTED,
                )


async def made_up_requests(server: ServerProcess, tag: str, count: int) -> None:
    async with aiohttp.ClientSession(server.http_url) as http:
        for i in range(count):
            # The HTTP parser refuses verbs it does not know (400, before any handler); the
            # ones it knows but no route takes are answered 405.
            for verb in (f"MADEUP{tag.upper()}{i}", "PROPFIND", "MKCALENDAR"):
                async with http.request(verb, f"{WEBHOOKS}/made-up-{tag}-{i}") as response:
                    assert response.status in (400, 401, 404, 405)
            async with http.get(f"/made/up/{tag}/{i}") as response:
                assert response.status in (401, 404)


async def test_made_up_methods_share_one_metric_label(
    guarded: ServerProcess, plain: ServerProcess
) -> None:
    count = 30
    for metadata, tag in [((), "none"), (bearer("wrong"), "wrong"), (bearer(TOKEN), "right")]:
        await made_up_calls(guarded, metadata, tag, count)
    await made_up_calls(plain, (), "open", count)
    await made_up_requests(guarded, "g", count)
    await made_up_requests(plain, "p", count)
    for server, token in [(guarded, TOKEN), (plain, None)]:
        exposition = await scrape(server, token)
        labels = method_labels(exposition)
        assert not [label for label in labels if "made" in label.lower()], labels
        assert len(labels) < 40, labels
        log = await logged(server, 'method="GET /metrics"')  # the scrape's line, the last
        assert "madeUp" not in log and "MADEUP" not in log
    # Refused before the method is looked up, and counted under one fixed name.
    exposition = await scrape(guarded, TOKEN)
    assert sample(exposition, "webhooks_calls_total", method="unknown", transport="grpc") == (
        2 * 2 * count
    )


# -- 2. Retry-After -------------------------------------------------------------------------

MALFORMED_RETRY_AFTER = ["²", "٣", "-5", "1e999", "9" * 40, "Tue, 99 Foo 2026 99:99:99 GMT"]


@pytest.mark.parametrize("value", MALFORMED_RETRY_AFTER)
async def test_malformed_retry_after_is_ignored(api: Api, value: str) -> None:
    receiver = await Receiver().start()
    try:
        # The receiver answers a delivery's first attempt 429 with this Retry-After.
        hook = await api.webhook(f"{receiver.url}/retry-after/{quote(value, safe='')}")
        [delivery_id] = (await api.publish()).delivery_ids
        delivery = await api.settled(delivery_id)
        assert delivery.status == dpb.SUCCEEDED
        assert [a.response_status for a in delivery.attempts] == [429, 200]
        # testWebhook answers as for any refusal (the receiver's first call of this id).
        result = (await api.hooks.testWebhook(pb.TestWebhook(webhook_id=hook.webhook_id))).result
        assert (result.success, result.response_status) == (False, 429)
    finally:
        await receiver.stop()


# -- 3. slow clients ------------------------------------------------------------------------


def half_open(address: tuple[str, int], count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(address, timeout=30)
        sock.sendall(HALF_REQUEST)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """Waits (bounded by the socket's timeout) for the server to close the connection."""
    try:
        while data := sock.recv(4096):
            assert data.startswith(b"HTTP/1.1 ") or not data, data
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def health(server: ServerProcess) -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(f"{server.http_url}/health") as response,
    ):
        return response.status


async def test_half_sent_requests_are_closed_and_health_answers(tmp_path: Path) -> None:
    # The open-files limit of the report, scaled down: more half-sent requests
    # than the server has file descriptors.
    server = own_server(tmp_path, open_files=(256, 256))
    host, port = server.http_url.removeprefix("http://").rsplit(":", 1)
    sockets: list[socket.socket] = []
    try:
        sockets = await asyncio.to_thread(half_open, (host, int(port)), 300)
        assert await health(server) == 200
        closed = await asyncio.gather(*(asyncio.to_thread(closed_by_server, s) for s in sockets))
        assert all(closed)
        assert await health(server) == 200
    finally:
        for sock in sockets:
            sock.close()
        assert server.stop() == 0
    log = server.log()
    assert "Too many open files" not in log, log[-2000:]


async def test_soft_open_files_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    server = own_server(tmp_path, open_files=(256, hard))
    try:
        assert server.proc is not None
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
        [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
        soft, hard = line.split()[3:5]
        assert soft == hard == str(resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    finally:
        assert server.stop() == 0


async def test_max_connections_caps_the_connections(tmp_path: Path) -> None:
    server = own_server(tmp_path, "--max-connections", "8")
    host, port = server.http_url.removeprefix("http://").rsplit(":", 1)
    sessions = [aiohttp.ClientSession() for _ in range(8)]
    try:
        # Eight clients that finished a request and keep their connections open ...
        for session in sessions:
            async with session.get(f"{server.http_url}/health") as response:
                assert response.status == 200
        # ... so a ninth is told the server is busy, and closed. (It sends nothing: had it
        # sent a request, the close could reset the connection before the answer is read.)
        with socket.create_connection((host, int(port)), timeout=30) as extra:
            answer = b""
            while data := extra.recv(4096):
                answer += data
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        # The refused one took no place: the eight are still served.
        for session in sessions:
            async with session.get(f"{server.http_url}/health") as response:
                assert response.status == 200
    finally:
        for session in sessions:
            await session.close()
        assert server.stop() == 0


# -- 4. cross-site writes and DNS rebinding -------------------------------------------------


async def post(server: ServerProcess, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    # With no Content-Type given, aiohttp would add application/octet-stream.
    skip = () if "Content-Type" in headers else ("Content-Type",)
    async with (
        aiohttp.ClientSession(skip_auto_headers=skip) as http,
        http.post(f"{server.http_url}{WEBHOOKS}", data=body, headers=headers) as response,
    ):
        return response.status, json.loads(await response.read())


async def stored(server: ServerProcess) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.http_url}{WEBHOOKS}?max_results=1000") as response,
    ):
        return [w["name"] for w in (await response.json()).get("webhooks", [])]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        None,
    ],
)
async def test_a_body_must_be_json(plain: ServerProcess, content_type: str | None) -> None:
    # What a page on any web site can POST cross-site without asking the browser first.
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({**VALID, "name": "cross-site"}).encode()
    status, reply = await post(plain, body, headers)
    assert status == 415, reply
    assert reply["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Content-Type: application/json" in reply["message"]
    assert "cross-site" not in await stored(plain)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_bodies_are_taken(plain: ServerProcess, content_type: str) -> None:
    name = f"json-{len(content_type)}"
    status, reply = await post(
        plain, json.dumps({**VALID, "name": name}).encode(), {"Content-Type": content_type}
    )
    assert status == 200, reply
    assert name in await stored(plain)


async def test_an_empty_body_needs_no_content_type(plain: ServerProcess) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{plain.http_url}/api/2.0/mlflow/webhook-deliveries/none/redeliver") as r,
    ):
        assert r.status == 404, await r.text()


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.1.2.3:80", "[::1]", "[::1]:8080", None],
)
async def test_loopback_host_names_are_answered(plain: ServerProcess, host: str | None) -> None:
    async with (
        aiohttp.ClientSession(skip_auto_headers=["Host"] if host is None else ()) as http,
        http.get(f"{plain.http_url}{WEBHOOKS}", headers={"Host": host} if host else {}) as r,
    ):
        assert r.status == 200, await r.text()


REBOUND = ["attacker.example", "attacker.example:8080", "localhost.attacker.example", "10.0.0.1"]


@pytest.mark.parametrize("host", REBOUND)
async def test_other_host_names_are_refused_on_loopback(plain: ServerProcess, host: str) -> None:
    # A page of attacker.example whose name the attacker re-points at 127.0.0.1.
    for method, path in [("GET", WEBHOOKS), ("POST", WEBHOOKS), ("GET", "/metrics")]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method,
                f"{plain.http_url}{path}",
                headers={"Host": host, "Content-Type": "application/json"},
                data=json.dumps({**VALID, "name": "rebound"}) if method == "POST" else None,
            ) as response,
        ):
            assert response.status == 403
            reply = await response.json()
            assert reply["error_code"] == "PERMISSION_DENIED"
            assert "--allowed-hosts" in reply["message"]
    assert "rebound" not in await stored(plain)


async def test_allowed_hosts_extends_the_loopback_names(tmp_path: Path) -> None:
    server = own_server(tmp_path, "--allowed-hosts", "hooks.internal,*.corp.example")
    try:
        async with aiohttp.ClientSession() as http:
            for host, status in [
                ("hooks.internal:8080", 200),
                ("HOOKS.internal", 200),
                ("a.corp.example", 200),
                ("localhost", 200),
                ("corp.example", 403),
                ("attacker.example", 403),
            ]:
                async with http.get(f"{server.http_url}{WEBHOOKS}", headers={"Host": host}) as r:
                    assert r.status == status, host
    finally:
        assert server.stop() == 0


async def test_any_host_name_when_not_bound_to_loopback(tmp_path: Path) -> None:
    server = own_server(tmp_path, "--http-address", "0.0.0.0:0")
    port = server.http_url.rsplit(":", 1)[1]
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{port}{WEBHOOKS}", headers={"Host": "hooks.example.com"}
            ) as response,
        ):
            assert response.status == 200
    finally:
        assert server.stop() == 0


# -- 8. receiver URLs in the logs -----------------------------------------------------------

MARK = "SEKRET"


@contextlib.asynccontextmanager
async def garbage_receiver() -> AsyncIterator[int]:
    """A receiver whose answer is not HTTP: aiohttp's error for it quotes the whole URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def leaky_urls(port: int) -> list[str]:
    return [
        f"http://LOCALHOST:{port}/{MARK}-upper?token={MARK}",
        f"http://127.0.0.1:{port}/a/../{MARK}-dots/?q={MARK}",
        f"http://127.0.0.1:{port}/{MARK}-é?x=ü{MARK}",
        f"http://user:{MARK}pw@127.0.0.1:{port}/{MARK}-userinfo",
        f"http://127.0.0.1:{port}/{MARK}%2Fencoded?%74oken={MARK}#{MARK}",
        f"HTTP://127.0.0.1:{port}//{MARK}//double",
    ]


async def test_receiver_urls_reach_neither_log(api: Api) -> None:
    async with garbage_receiver() as port:
        hooks = [await api.webhook(url) for url in leaky_urls(port)]
        for hook in hooks:
            result = (
                await api.hooks.testWebhook(pb.TestWebhook(webhook_id=hook.webhook_id))
            ).result
            assert not result.success and result.error_message
            assert MARK not in result.error_message
        delivery_ids = (await api.publish()).delivery_ids
        assert len(delivery_ids) == len(hooks)
        for delivery_id in delivery_ids:
            async with asyncio.timeout(20):
                while not (delivery := await api.delivery(delivery_id)).attempts:
                    await asyncio.sleep(0.05)
            assert all(a.error and MARK not in a.error for a in delivery.attempts)
            # A manual redelivery is logged by its own path.
            redelivered = await api.deliveries.redeliver(dpb.Redeliver(delivery_id=delivery_id))
            attempts = redelivered.delivery.attempts
            assert all(a.error and MARK not in a.error for a in attempts)
            await logged(api.server, f"delivery_id={delivery_id} ", count=len(attempts))
    log = api.server.log()
    assert MARK not in log, [line for line in log.splitlines() if MARK in line]
    hosts = set(re.findall(r"delivery attempt .*? host=(\S+)", log))
    assert hosts <= {"localhost", "127.0.0.1"}, hosts


# -- 11. URLs judged by the parser that sends -----------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://host\\@8.8.8.8/", "https://example.com\\@8.8.8.8/", "http://exa mple.com/"],
)
async def test_urls_the_sender_cannot_use_are_refused(api: Api, url: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.webhook(url)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith(f"Invalid webhook URL {url!r}")


async def test_numeric_shorthands_are_refused_as_the_sender_refuses_them(api: Api) -> None:
    # aiohttp takes an all-numeric host for an address and refuses one not written as four
    # decimal numbers on every send; the resolver would have taken it for 127.0.0.1.
    receiver = await Receiver().start()
    try:
        port = receiver.url.rsplit(":", 1)[1]
        for host in ["127.1", "2130706433", "0177.0.0.1"]:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await api.webhook(f"http://{host}:{port}/ok")
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not a canonical IPv4 address" in refused.value.details()
    finally:
        await receiver.stop()


async def test_a_url_is_delivered_to_where_it_was_judged_to_point(api: Api) -> None:
    receiver = await Receiver().start()
    try:
        port = receiver.url.rsplit(":", 1)[1]
        # Not numeric to aiohttp, so a name: both the check and the sender's resolver make
        # it 127.0.0.1.
        await api.webhook(f"http://0x7f.1:{port}/ok")
        [delivery_id] = (await api.publish()).delivery_ids
        assert (await api.settled(delivery_id)).status == dpb.SUCCEEDED
    finally:
        await receiver.stop()


async def test_hex_loopback_is_refused_without_private_urls(tmp_path: Path) -> None:
    server = run_server(
        tmp_path, "--allowed-schemes", "http,https", "--database-url", f"sqlite:///{tmp_path}/w.db"
    )
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await make_api(server, channel).webhook("http://0x7f.1/")
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "resolves to 127.0.0.1, refused by the private rule" in refused.value.details()
    finally:
        assert server.stop() == 0


# -- 12. request ids ------------------------------------------------------------------------

FORGED = "abc code=OK peer=10.0.0.1"


async def test_a_forged_request_id_is_replaced(plain: ServerProcess) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{plain.http_url}{WEBHOOKS}", headers={"X-Request-Id": FORGED}) as response,
    ):
        assert response.status == 200
        replaced = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced), replaced
    async with grpc.aio.insecure_channel(plain.grpc_address) as channel:
        listing = channel.unary_unary(
            "/mlflow.WebhookService/listWebhooks",
            request_serializer=pb.ListWebhooks.SerializeToString,
            response_deserializer=pb.ListWebhooks.Response.FromString,
        )
        await listing(pb.ListWebhooks(), metadata=(("x-request-id", FORGED),), timeout=10)
        await listing(pb.ListWebhooks(), metadata=(("x-request-id", "trace-7.a_B"),), timeout=10)
    log = await logged(plain, "request_id=trace-7.a_B ")
    assert f"request_id={replaced} " in log
    assert "peer=10.0.0.1" not in log and FORGED not in log
