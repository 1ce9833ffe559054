"""Operating the service: bearer tokens, TLS, Prometheus metrics and logs, each against a
real server process."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from mlflow_webhooks.server.events import EVENTS
from tests.conftest import PERMISSIVE
from tests.support import ROOT, Receiver, ServerProcess, make_certificates, run_server
from tests.test_mlflow_client import MlflowClientProcess

TOKEN = "tok-3f9a1c0e7d2b"
SECRET = "sek-8e1f4b2a9c6d"
GRPCURL = str(ROOT / ".venv" / "bin" / "grpcurl")
MV_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)

# One cheap request for every RPC of both services: auth is checked before anything else.
EVERY_RPC = [
    ("WebhookService", "createWebhook", pb.CreateWebhook()),
    ("WebhookService", "listWebhooks", pb.ListWebhooks()),
    ("WebhookService", "getWebhook", pb.GetWebhook(webhook_id="x")),
    ("WebhookService", "updateWebhook", pb.UpdateWebhook(webhook_id="x")),
    ("WebhookService", "deleteWebhook", pb.DeleteWebhook(webhook_id="x")),
    ("WebhookService", "testWebhook", pb.TestWebhook(webhook_id="x")),
    ("WebhookDeliveryService", "publishEvent", dpb.PublishEvent()),
    ("WebhookDeliveryService", "listDeliveries", dpb.ListDeliveries()),
    ("WebhookDeliveryService", "getDelivery", dpb.GetDelivery(delivery_id="x")),
    ("WebhookDeliveryService", "redeliver", dpb.Redeliver(delivery_id="x")),
    ("WebhookDeliveryService", "setWebhookFilter", dpb.SetWebhookFilter(webhook_id="x")),
    ("WebhookDeliveryService", "getWebhookFilter", dpb.GetWebhookFilter(webhook_id="x")),
    ("WebhookDeliveryService", "setWebhookSettings", dpb.SetWebhookSettings(webhook_id="x")),
    ("WebhookDeliveryService", "getWebhookSettings", dpb.GetWebhookSettings(webhook_id="x")),
    ("WebhookDeliveryService", "rotateWebhookSecret", dpb.RotateWebhookSecret(webhook_id="x")),
]
EVERY_ROUTE = [
    ("POST", "/api/2.0/mlflow/webhooks"),
    ("GET", "/api/2.0/mlflow/webhooks"),
    ("GET", "/ajax-api/2.0/mlflow/webhooks/x"),
    ("PATCH", "/mlflow/webhooks/x"),
    ("DELETE", "/api/2.0/mlflow/webhooks/x"),
    ("POST", "/api/2.0/mlflow/webhooks/x/test"),
    ("POST", "/api/2.0/mlflow/webhook-events"),
    ("GET", "/api/2.0/mlflow/webhook-deliveries"),
    ("GET", "/api/2.0/mlflow/webhook-deliveries/x"),
    ("POST", "/api/2.0/mlflow/webhook-deliveries/x/redeliver"),
    ("POST", "/api/2.0/mlflow/webhooks/x/filter"),
    ("GET", "/api/2.0/mlflow/webhooks/x/filter"),
    ("POST", "/api/2.0/mlflow/webhooks/x/settings"),
    ("GET", "/api/2.0/mlflow/webhooks/x/settings"),
    ("POST", "/api/2.0/mlflow/webhooks/x/rotate-secret"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]


def call(channel: grpc.aio.Channel, service: str, method: str, request, metadata=()):
    response_class = {
        "WebhookService": pb_grpc.WebhookServiceStub,
        "WebhookDeliveryService": dpb_grpc.WebhookDeliveryServiceStub,
    }[service]
    return getattr(response_class(channel), method)(request, metadata=metadata, timeout=10)


async def code_of(awaitable) -> grpc.StatusCode:
    try:
        await awaitable
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    path.write_text(f"# comment lines are not tokens\n{TOKEN}\n")
    return path


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    workdir = tmp_path_factory.mktemp("guarded")
    server = run_server(
        workdir,
        *PERMISSIVE,
        "--auth-token",
        TOKEN,
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
    )
    yield server
    server.stop()


@pytest.fixture
async def guarded_channel(guarded: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(guarded.grpc_address) as channel:
        yield channel


@pytest.mark.parametrize(("service", "method", "request_message"), EVERY_RPC)
async def test_every_rpc_needs_the_token(guarded_channel, service, method, request_message):
    for metadata in [(), bearer("wrong"), (("authorization", TOKEN),)]:
        code = await code_of(call(guarded_channel, service, method, request_message, metadata))
        assert code == grpc.StatusCode.UNAUTHENTICATED, metadata
    code = await code_of(call(guarded_channel, service, method, request_message, bearer(TOKEN)))
    assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNKNOWN)


async def test_grpc_refusal_says_what_to_send(guarded_channel):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call(guarded_channel, *EVERY_RPC[1])
    assert "Bearer" in e.value.details() and "authorization" in e.value.details()


async def test_health_stays_open(guarded: ServerProcess, guarded_channel):
    answer = await health_pb2_grpc.HealthStub(guarded_channel).Check(
        health_pb2.HealthCheckRequest(), timeout=10
    )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    async with aiohttp.ClientSession() as http, http.get(f"{guarded.http_url}/health") as r:
        assert r.status == 200


@pytest.mark.parametrize(("verb", "path"), EVERY_ROUTE)
async def test_every_route_needs_the_token(guarded: ServerProcess, verb: str, path: str):
    url = f"{guarded.http_url}{path}"
    async with aiohttp.ClientSession() as http:
        for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]:
            async with http.request(verb, url, headers=headers, json={}) as r:
                assert r.status == 401, (headers, await r.text())
                body = await r.json()
                assert body["error_code"] == "UNAUTHENTICATED" and "Bearer" in body["message"]
        async with http.request(
            verb, url, headers={"Authorization": f"Bearer {TOKEN}"}, json={}
        ) as r:
            assert r.status != 401 and r.status < 500, await r.text()


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=30, check=False)


def test_reflection_needs_the_token(guarded: ServerProcess):
    refused = grpcurl("-plaintext", guarded.grpc_address, "list")
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
    allowed = grpcurl(
        "-plaintext", "-H", f"authorization: Bearer {TOKEN}", guarded.grpc_address, "list"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "mlflow.WebhookService" in allowed.stdout


async def test_mlflow_client_sends_its_tracking_token(guarded: ServerProcess):
    client = await MlflowClientProcess.start(guarded.http_url, {"MLFLOW_TRACKING_TOKEN": TOKEN})
    try:
        listed = await client.ok("list_webhooks")
        assert "items" in listed
    finally:
        await client.close()
    anonymous = await MlflowClientProcess.start(guarded.http_url, {"MLFLOW_TRACKING_TOKEN": ""})
    try:
        error = await anonymous.error("list_webhooks")
        assert error["error_code"] == "UNAUTHENTICATED"
    finally:
        await anonymous.close()


async def test_token_file_rotates_on_sighup(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\n")
    server = run_server(
        tmp_path,
        "--auth-token-file",
        str(tokens),
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            list_call = EVERY_RPC[1]
            assert (
                await code_of(call(channel, *list_call, bearer("first-token")))
                == grpc.StatusCode.OK
            )
            assert (
                await code_of(call(channel, *list_call, bearer("second-token")))
                == grpc.StatusCode.UNAUTHENTICATED
            )
            tokens.write_text("second-token\nthird-token\n")
            server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            async with asyncio.timeout(10):
                # The reload happens on the server's loop right after the signal arrives.
                while (
                    await code_of(call(channel, *list_call, bearer("second-token")))
                    != grpc.StatusCode.OK
                ):
                    await asyncio.sleep(0.05)
            assert (
                await code_of(call(channel, *list_call, bearer("third-token")))
                == grpc.StatusCode.OK
            )
            assert (
                await code_of(call(channel, *list_call, bearer("first-token")))
                == grpc.StatusCode.UNAUTHENTICATED
            )
            # A token file that vanishes keeps the tokens read before.
            tokens.unlink()
            server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            async with asyncio.timeout(10):
                while "keeping the tokens read before" not in server.log():
                    await asyncio.sleep(0.05)
            assert (
                await code_of(call(channel, *list_call, bearer("third-token")))
                == grpc.StatusCode.OK
            )
            # So does one emptied by mistake: it would lock every caller out.
            tokens.write_text("\n  \n")
            server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            async with asyncio.timeout(10):
                while "holds no token" not in server.log():
                    await asyncio.sleep(0.05)
            assert (
                await code_of(call(channel, *list_call, bearer("third-token")))
                == grpc.StatusCode.OK
            )
    finally:
        assert server.stop() == 0


def test_missing_token_file_stops_the_start(tmp_path: Path):
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "mlflow_webhooks.server",
            "--auth-token-file",
            str(tmp_path / "absent"),
            "--grpc-address",
            "127.0.0.1:0",
            "--http-address",
            "127.0.0.1:0",
            "--database-url",
            f"sqlite:///{tmp_path}/w.db",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot read --auth-token-file" in done.stderr and "Traceback" not in done.stderr


# -- TLS --------------------------------------------------------------------------------


async def test_tls_for_grpc_and_http(tmp_path: Path):
    ca, cert, key = make_certificates(tmp_path)
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
        async with grpc.aio.secure_channel(server.grpc_address, credentials) as channel:
            request = pb.CreateWebhook(name="tls", url="https://example.com/h", events=[MV_CREATED])
            created = await pb_grpc.WebhookServiceStub(channel).createWebhook(request, timeout=10)
        # A plaintext client fails cleanly: an error status, no hang.
        async with grpc.aio.insecure_channel(server.grpc_address) as plain:
            code = await code_of(call(plain, *EVERY_RPC[1]))
            assert code == grpc.StatusCode.UNAVAILABLE
        # grpcurl with -cacert, as the README shows.
        done = grpcurl(
            "-cacert",
            str(ca),
            "-d",
            json.dumps({"webhook_id": created.webhook.webhook_id}),
            server.grpc_address,
            "mlflow.WebhookService/getWebhook",
        )
        assert done.returncode == 0, done.stderr
        assert created.webhook.webhook_id in done.stdout
        # The shim speaks HTTPS with the same certificate.
        context = ssl.create_default_context(cafile=str(ca))
        https = server.http_url.replace("http://", "https://")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{https}/api/2.0/mlflow/webhooks", ssl=context) as r:
                assert r.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"{server.http_url}/health") as r:
                    await r.read()
    finally:
        assert server.stop() == 0


def test_tls_flags_go_together(tmp_path: Path):
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "mlflow_webhooks.server",
            "--tls-cert",
            "x.pem",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "--tls-key" in done.stderr


# -- metrics ------------------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


async def scrape(server: ServerProcess) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as r:
        assert r.status == 200 and r.content_type == "text/plain"
        return await r.text()


async def test_metrics_move_with_calls_and_deliveries(tmp_path: Path):
    receiver = await Receiver().start()
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--retry-schedule",
        "3600",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    create = "/mlflow.WebhookService/createWebhook"
    try:
        before = await scrape(server)
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            hooks = pb_grpc.WebhookServiceStub(channel)
            for path in ("ok", "status/503"):
                request = pb.CreateWebhook(
                    name="m", url=f"{receiver.url}/{path}", events=[MV_CREATED]
                )
                await hooks.createWebhook(request)
            await code_of(hooks.getWebhook(pb.GetWebhook(webhook_id="missing")))
            publish = dpb.PublishEvent(event=MV_CREATED)
            publish.data.update(EVENTS[(pb.MODEL_VERSION, pb.CREATED)].example)
            await dpb_grpc.WebhookDeliveryServiceStub(channel).publishEvent(publish)
        await receiver.wait_for(2)
        async with asyncio.timeout(10):
            while True:
                after = await scrape(server)
                # Both attempts counted, and their results written (batches lag a little).
                if (
                    metric(after, "webhooks_delivery_attempts_total", outcome="retrying") >= 1
                    and metric(after, "webhooks_delivery_attempts_total", outcome="succeeded") >= 1
                    and metric(after, "webhooks_deliveries_pending") == 1
                ):
                    break
                await asyncio.sleep(0.05)
        assert (
            metric(after, "webhooks_calls_total", method=create, code="OK")
            == metric(before, "webhooks_calls_total", method=create, code="OK") + 2
        )
        assert (
            metric(
                after,
                "webhooks_calls_total",
                method="/mlflow.WebhookService/getWebhook",
                code="NOT_FOUND",
            )
            == 1
        )
        assert (
            metric(after, "webhooks_call_duration_seconds_count", method=create, transport="grpc")
            == 2
        )
        assert (
            metric(after, "webhooks_calls_total", transport="rest", code="200") >= 1
        )  # the scrapes
        assert metric(after, "webhooks_delivery_attempt_duration_seconds_count") == 2
        # The 503 one waits an hour for its retry: it is the backlog.
        assert metric(after, "webhooks_deliveries_pending") == 1
        assert metric(after, "webhooks_oldest_pending_delivery_age_seconds") >= 0
    finally:
        assert server.stop() == 0
        await receiver.stop()


async def test_metrics_cover_every_worker(tmp_path: Path):
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--workers",
        "2",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    try:
        # Separate channels land on both workers; every call must be counted once.
        for _ in range(8):
            async with grpc.aio.insecure_channel(server.grpc_address) as channel:
                stub = pb_grpc.WebhookServiceStub(channel)
                for _ in range(5):
                    await stub.listWebhooks(pb.ListWebhooks())
        for _ in range(4):  # whichever worker answers the scrape, it adds up both
            text = await scrape(server)
            total = metric(
                text, "webhooks_calls_total", method="/mlflow.WebhookService/listWebhooks"
            )
            assert total == 40
    finally:
        assert server.stop() == 0


# -- logs ---------------------------------------------------------------------------------


async def test_logs_hold_no_secret_token_or_signature(tmp_path: Path):
    receiver = await Receiver().start()
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--auth-token",
        TOKEN,
        "--log-format",
        "json",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    metadata = (*bearer(TOKEN), ("x-request-id", "req-trace-1"))
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            hooks = pb_grpc.WebhookServiceStub(channel)
            deliveries = dpb_grpc.WebhookDeliveryServiceStub(channel)
            created = (
                await hooks.createWebhook(
                    pb.CreateWebhook(
                        name="logged",
                        url=f"{receiver.url}/ok?api_key={SECRET}",
                        secret=SECRET,
                        events=[MV_CREATED],
                    ),
                    metadata=metadata,
                )
            ).webhook
            webhook_id = created.webhook_id
            await hooks.listWebhooks(pb.ListWebhooks(), metadata=metadata)
            await hooks.getWebhook(pb.GetWebhook(webhook_id=webhook_id), metadata=metadata)
            await hooks.updateWebhook(
                pb.UpdateWebhook(webhook_id=webhook_id, secret=SECRET + "2"), metadata=metadata
            )
            await deliveries.rotateWebhookSecret(
                dpb.RotateWebhookSecret(webhook_id=webhook_id, secret=SECRET + "3"),
                metadata=metadata,
            )
            # A generated secret is answered once; the deliveries below are signed with it
            # and with the one it replaced.
            generated = (
                await deliveries.rotateWebhookSecret(
                    dpb.RotateWebhookSecret(webhook_id=webhook_id), metadata=metadata
                )
            ).secret
            await hooks.testWebhook(pb.TestWebhook(webhook_id=webhook_id), metadata=metadata)
            publish = dpb.PublishEvent(event=MV_CREATED)
            publish.data.update(EVENTS[(pb.MODEL_VERSION, pb.CREATED)].example)
            published = await deliveries.publishEvent(publish, metadata=metadata)
            await receiver.wait_for(2)
            delivery_id = published.delivery_ids[0]
            await deliveries.listDeliveries(dpb.ListDeliveries(), metadata=metadata)
            await deliveries.getDelivery(
                dpb.GetDelivery(delivery_id=delivery_id), metadata=metadata
            )
            await deliveries.redeliver(dpb.Redeliver(delivery_id=delivery_id), metadata=metadata)
            await hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=webhook_id), metadata=metadata)
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(f"{server.http_url}/api/2.0/mlflow/webhooks", headers=headers) as r:
                assert r.status == 200 and r.headers["X-Request-Id"]
    finally:
        assert server.stop() == 0
        await receiver.stop()
    log = server.log()
    signatures = [
        signature.split(",", 1)[1]
        for r in receiver.received
        for signature in r.headers["webhook-signature"].split()
    ]
    assert len(signatures) == 2 * len(receiver.received)
    for needle in [SECRET, TOKEN, generated, *signatures]:
        assert needle not in log
    lines = [json.loads(line) for line in log.splitlines()]
    calls = [line for line in lines if line["logger"] == "webhooks.calls"]
    assert {c["method"].rsplit("/", 1)[-1] for c in calls if c["transport"] == "grpc"} >= {
        "createWebhook",
        "listWebhooks",
        "getWebhook",
        "updateWebhook",
        "testWebhook",
        "publishEvent",
        "listDeliveries",
        "getDelivery",
        "redeliver",
        "rotateWebhookSecret",
        "deleteWebhook",
    }
    assert any(c["request_id"] == "req-trace-1" for c in calls)
    attempts = [line for line in lines if line["logger"] == "webhooks.deliveries"]
    assert {a["outcome"] for a in attempts} >= {"test", "succeeded"}
    assert all(a["host"] == "127.0.0.1" for a in attempts)


async def test_access_log_off_drops_the_call_and_attempt_lines_but_not_the_metrics(
    tmp_path: Path,
):
    receiver = await Receiver().start()
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--log-format",
        "json",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
        env={"WEBHOOKS_ACCESS_LOG": "off"},
    )
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            hooks = pb_grpc.WebhookServiceStub(channel)
            await hooks.createWebhook(
                pb.CreateWebhook(name="quiet", url=f"{receiver.url}/ok", events=[MV_CREATED])
            )
            publish = dpb.PublishEvent(event=MV_CREATED)
            publish.data.update(EVENTS[(pb.MODEL_VERSION, pb.CREATED)].example)
            await dpb_grpc.WebhookDeliveryServiceStub(channel).publishEvent(publish)
            await receiver.wait_for(1)
        async with asyncio.timeout(20):
            while not metric(await scrape(server), "webhooks_delivery_attempts_total"):
                await asyncio.sleep(0.05)
        text = await scrape(server)
        create = "/mlflow.WebhookService/createWebhook"
        assert metric(text, "webhooks_calls_total", method=create, code="OK") == 1
    finally:
        assert server.stop() == 0
        await receiver.stop()
    loggers = {json.loads(line)["logger"] for line in server.log().splitlines()}
    assert "webhooks" in loggers  # the server's own lines are still there
    assert not loggers & {"webhooks.calls", "webhooks.deliveries"}


async def test_access_lines_keep_the_log_format_and_go_out_once_per_loop_iteration() -> None:
    import io

    from mlflow_webhooks.server.observe import AccessLog

    for log_format in ("text", "json"):
        stream = io.StringIO()
        access = AccessLog(log_format, stream)
        access.write("webhooks.calls", "call", {"method": "m", "code": "OK", "peer": None})
        access.write("webhooks.calls", "call", {"method": "n", "code": "OK", "peer": None})
        assert stream.getvalue() == ""  # written when this loop iteration ends
        await asyncio.sleep(0)
        lines = stream.getvalue().splitlines()
        assert len(lines) == 2
        if log_format == "text":
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO webhooks.calls call method=m code=OK",
                lines[0],
            )
        else:
            entry = json.loads(lines[1])
            assert entry["logger"] == "webhooks.calls" and entry["method"] == "n"
            assert entry["level"] == "INFO" and entry["peer"] is None
