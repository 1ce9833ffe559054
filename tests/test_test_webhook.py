"""testWebhook against a real aiohttp receiver: what arrives (body, headers, signature), and
what the caller is told for every way a receiver can answer or fail to."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from mlflow_webhooks.server import events
from tests.conftest import PERMISSIVE
from tests.support import ROOT, Received, Receiver, ServerProcess, run_server

ALL_EVENTS = list(events.EVENTS)


def ev(pair: tuple[int, int] = (pb.MODEL_VERSION, pb.CREATED)) -> pb.WebhookEvent:
    return pb.WebhookEvent(entity=pair[0], action=pair[1])


def unique(kind: str) -> str:
    """A receiver path only this test uses: /{kind}/{random} answers as /{kind} does."""
    return f"/{kind}/{uuid.uuid4().hex}"


async def arrivals(receiver: Receiver, path: str, count: int = 1) -> list[Received]:
    """What arrived at `path`, once at least `count` requests have (bounded)."""

    def matching() -> list[Received]:
        return [r for r in receiver.received if r.path == path]

    async with receiver.arrived:
        await asyncio.wait_for(receiver.arrived.wait_for(lambda: len(matching()) >= count), 10)
    return matching()


async def make(stub: pb_grpc.WebhookServiceStub, url: str, **fields: Any) -> tuple[str, pb.Webhook]:
    fields.setdefault("events", [ev()])
    created = await stub.createWebhook(pb.CreateWebhook(name="tested", url=url, **fields))
    return created.webhook.webhook_id, created.webhook


async def send_test(
    stub: pb_grpc.WebhookServiceStub, webhook_id: str, event: pb.WebhookEvent | None = None
) -> pb.WebhookTestResult:
    request = pb.TestWebhook(webhook_id=webhook_id)
    if event is not None:
        request.event.CopyFrom(event)
    return (await stub.testWebhook(request)).result


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def expected_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.{body.decode()}".encode()
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_payload(body: bytes, pair: tuple[int, int]) -> None:
    """MLflow's test payload: entity/action lower-case, ISO-8601 UTC time, the example data."""
    sent = json.loads(body)
    assert set(sent) == {"entity", "action", "timestamp", "data"}
    assert sent["entity"] == pb.WebhookEntity.Name(pair[0]).lower()
    assert sent["action"] == pb.WebhookAction.Name(pair[1]).lower()
    assert sent["data"] == events.EVENTS[pair].example
    when = datetime.fromisoformat(sent["timestamp"])
    assert when.utcoffset() is not None
    assert when.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - when).total_seconds()) < 120


# MLflow's own code, in a process of its own: its protos and ours cannot share one process.
MLFLOW_REFERENCE = r"""
import json, sys
from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent
from mlflow.webhooks.delivery import _generate_hmac_signature
from mlflow.webhooks.types import get_example_payload_for_event

asked = json.load(sys.stdin)
examples = {
    f"{e}.{a}": dict(
        get_example_payload_for_event(WebhookEvent(WebhookEntity(e), WebhookAction(a)))
    )
    for e, a in asked["events"]
}
signature = _generate_hmac_signature(*asked["sign"])
json.dump({"examples": examples, "signature": signature}, sys.stdout)
"""
SIGN_INPUT = ["sécret ☃", "0b9e8e56-7a43-4f5c-9d0b-2f8c1f6d2a11", "1700000000", '{"a": "é"}']


@pytest.fixture(scope="module")
def mlflow_reference() -> dict[str, Any]:
    asked = {
        "events": [[events.entity_name(e), events.action_name(a)] for e, a in ALL_EVENTS],
        "sign": SIGN_INPUT,
    }
    done = subprocess.run(
        [sys.executable, "-c", MLFLOW_REFERENCE],
        input=json.dumps(asked),
        capture_output=True,
        text=True,
        cwd=ROOT.parent,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def test_signature_scheme_is_mlflows(mlflow_reference: dict[str, Any]) -> None:
    """The verifier these tests use computes what MLflow's own signing code computes."""
    secret, delivery_id, timestamp, body = SIGN_INPUT
    mine = expected_signature(secret, delivery_id, timestamp, body.encode())
    assert mine == mlflow_reference["signature"]


@pytest.mark.parametrize(
    "pair",
    ALL_EVENTS,
    ids=[f"{events.entity_name(e)}.{events.action_name(a)}" for e, a in ALL_EVENTS],
)
def test_example_payloads_are_mlflows(
    pair: tuple[int, int], mlflow_reference: dict[str, Any]
) -> None:
    name = f"{events.entity_name(pair[0])}.{events.action_name(pair[1])}"
    assert mlflow_reference["examples"][name] == events.EVENTS[pair].example


# -- a receiver that answers 200 -------------------------------------------------------


async def test_success(stub: pb_grpc.WebhookServiceStub, receiver: Receiver) -> None:
    path = unique("ok")
    wid, _ = await make(stub, receiver.url + path)
    result = await send_test(stub, wid)
    assert result.success is True
    assert result.response_status == 200
    assert result.response_body == "ok"
    assert not result.HasField("error_message")
    (got,) = await arrivals(receiver, path)
    headers = lower(got.headers)
    assert headers["content-type"] == "application/json"
    # No secret, no signature.
    assert "x-mlflow-signature" not in headers
    assert "webhook-signature" not in headers
    check_payload(got.body, (pb.MODEL_VERSION, pb.CREATED))


async def test_signed_headers(stub: pb_grpc.WebhookServiceStub, receiver: Receiver) -> None:
    secret = "sécret ☃ with spaces"
    path = unique("ok")
    wid, _ = await make(stub, receiver.url + path, secret=secret)
    before = int(time.time())
    result = await send_test(stub, wid)
    after = int(time.time())
    assert result.success
    (got,) = await arrivals(receiver, path)
    headers = lower(got.headers)
    delivery_id = headers["x-mlflow-delivery-id"]
    timestamp = headers["x-mlflow-timestamp"]
    assert str(uuid.UUID(delivery_id)) == delivery_id
    assert headers["webhook-id"] == delivery_id
    assert headers["webhook-timestamp"] == timestamp
    assert timestamp.isdigit()
    assert before <= int(timestamp) <= after
    assert headers["content-type"] == "application/json"
    signature = expected_signature(secret, delivery_id, timestamp, got.body)
    assert headers["x-mlflow-signature"] == signature
    assert headers["webhook-signature"] == signature
    check_payload(got.body, (pb.MODEL_VERSION, pb.CREATED))


async def test_each_test_has_its_own_delivery_id(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver
) -> None:
    path = unique("ok")
    wid, _ = await make(stub, receiver.url + path, secret="s")
    for _ in range(2):
        assert (await send_test(stub, wid)).success
    got = await arrivals(receiver, path, 2)
    ids = {lower(r.headers)["x-mlflow-delivery-id"] for r in got}
    assert len(ids) == 2


async def test_update_secret_changes_signature_and_empty_turns_it_off(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver
) -> None:
    path = unique("ok")
    wid, _ = await make(stub, receiver.url + path, secret="first")
    await stub.updateWebhook(pb.UpdateWebhook(webhook_id=wid, secret="second"))
    assert (await send_test(stub, wid)).success
    (signed,) = await arrivals(receiver, path, 1)
    headers = lower(signed.headers)
    assert headers["x-mlflow-signature"] == expected_signature(
        "second", headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], signed.body
    )
    # Another field alone leaves the secret as it is.
    await stub.updateWebhook(pb.UpdateWebhook(webhook_id=wid, description="kept secret"))
    assert (await send_test(stub, wid)).success
    still = (await arrivals(receiver, path, 2))[1]
    headers = lower(still.headers)
    assert headers["x-mlflow-signature"] == expected_signature(
        "second", headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], still.body
    )
    # An empty secret turns signing off.
    await stub.updateWebhook(pb.UpdateWebhook(webhook_id=wid, secret=""))
    assert (await send_test(stub, wid)).success
    unsigned = (await arrivals(receiver, path, 3))[2]
    headers = lower(unsigned.headers)
    assert "x-mlflow-signature" not in headers
    assert "webhook-signature" not in headers
    assert "x-mlflow-delivery-id" in headers


# -- which event -----------------------------------------------------------------------


async def test_default_is_first_event(stub: pb_grpc.WebhookServiceStub, receiver: Receiver) -> None:
    path = unique("ok")
    first = (pb.PROMPT_VERSION_TAG, pb.DELETED)
    wid, _ = await make(stub, receiver.url + path, events=[ev(first), ev()])
    assert (await send_test(stub, wid)).success
    (got,) = await arrivals(receiver, path)
    check_payload(got.body, first)


async def test_every_event_chosen_explicitly(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver
) -> None:
    path = unique("ok")
    wid, _ = await make(stub, receiver.url + path, events=[ev(p) for p in ALL_EVENTS])
    for pair in ALL_EVENTS:
        result = await send_test(stub, wid, ev(pair))
        assert result.success, pair
    got = await arrivals(receiver, path, len(ALL_EVENTS))
    for pair, request in zip(ALL_EVENTS, got, strict=True):
        check_payload(request.body, pair)


INVALID_EVENTS = {
    "bad-action": (
        ev((pb.REGISTERED_MODEL, pb.DELETED)),
        "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']",
    ),
    "empty-event": (pb.WebhookEvent(), "entity"),
    "action-unspecified": (
        pb.WebhookEvent(entity=pb.MODEL_VERSION),
        "Invalid action 'action_unspecified' for entity 'model_version'.",
    ),
}


@pytest.mark.parametrize(("event", "message"), INVALID_EVENTS.values(), ids=INVALID_EVENTS.keys())
async def test_invalid_chosen_event(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver, event: pb.WebhookEvent, message: str
) -> None:
    path = unique("ok")
    wid, _ = await make(stub, receiver.url + path)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await send_test(stub, wid, event)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in e.value.details()
    assert not [r for r in receiver.received if r.path == path]


# -- receivers that fail ---------------------------------------------------------------


@pytest.mark.parametrize("code", [404, 500, 410, 400])
async def test_error_status(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver, code: int
) -> None:
    wid, _ = await make(stub, f"{receiver.url}/status/{code}")
    result = await send_test(stub, wid)
    assert result.success is False
    assert result.response_status == code
    assert result.response_body == f"answered {code}"


@pytest.mark.parametrize("code", [201, 204, 299])
async def test_any_2xx_is_success(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver, code: int
) -> None:
    wid, _ = await make(stub, f"{receiver.url}/status/{code}")
    result = await send_test(stub, wid)
    assert result.success is True
    assert result.response_status == code


async def test_test_of_a_410_leaves_the_webhook_active(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver
) -> None:
    wid, _ = await make(stub, f"{receiver.url}/status/410")
    assert not (await send_test(stub, wid)).success
    got = await stub.getWebhook(pb.GetWebhook(webhook_id=wid))
    assert got.webhook.status == pb.ACTIVE


async def test_timeout(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver, server: ServerProcess
) -> None:
    path = unique("slow")
    wid, _ = await make(stub, receiver.url + path)
    started = time.monotonic()
    result = await send_test(stub, wid)
    took = time.monotonic() - started
    assert result.success is False
    assert not result.HasField("response_status")
    assert "timed out" in result.error_message or "timeout" in result.error_message.lower()
    assert "2" in result.error_message  # the session server's --delivery-timeout
    # The session server's --delivery-timeout is 2 seconds.
    assert 1.5 <= took < 15
    assert len(await arrivals(receiver, path)) == 1


async def test_redirect_not_followed(stub: pb_grpc.WebhookServiceStub, receiver: Receiver) -> None:
    path = unique("redirect")
    wid, _ = await make(stub, receiver.url + path)
    result = await send_test(stub, wid)
    assert result.success is False
    assert result.response_status == 302
    assert "redirect" in result.error_message.lower()
    # Exactly one request: the redirect was not followed, nor the POST retried.
    assert len(await arrivals(receiver, path)) == 1
    await asyncio.sleep(0)
    assert len([r for r in receiver.received if r.path == path]) == 1


async def test_connection_closed(stub: pb_grpc.WebhookServiceStub, receiver: Receiver) -> None:
    path = unique("close")
    wid, _ = await make(stub, receiver.url + path)
    result = await send_test(stub, wid)
    assert result.success is False
    assert not result.HasField("response_status")
    assert result.error_message
    assert "Traceback" not in result.error_message
    assert len(await arrivals(receiver, path)) == 1


async def test_connection_refused(stub: pb_grpc.WebhookServiceStub) -> None:
    # Port 1 on loopback: nothing listens.
    wid, _ = await make(stub, "http://127.0.0.1:1/nothing")
    result = await send_test(stub, wid)
    assert result.success is False
    assert not result.HasField("response_status")
    assert result.error_message


async def test_disabled_webhook_still_tested(
    stub: pb_grpc.WebhookServiceStub, receiver: Receiver
) -> None:
    path = unique("ok")
    wid, hook = await make(stub, receiver.url + path, status=pb.DISABLED)
    assert hook.status == pb.DISABLED
    result = await send_test(stub, wid)
    assert result.success
    assert len(await arrivals(receiver, path)) == 1
    path2 = unique("ok")
    other, _ = await make(stub, receiver.url + path2)
    await stub.updateWebhook(pb.UpdateWebhook(webhook_id=other, status=pb.DISABLED))
    assert (await send_test(stub, other)).success
    assert len(await arrivals(receiver, path2)) == 1


# -- private addresses -----------------------------------------------------------------


@asynccontextmanager
async def server_on(
    workdir: Path, db: Path, *args: str
) -> AsyncIterator[pb_grpc.WebhookServiceStub]:
    proc = await asyncio.to_thread(run_server, workdir, "--database-url", f"sqlite:///{db}", *args)
    try:
        async with grpc.aio.insecure_channel(proc.grpc_address) as channel:
            yield pb_grpc.WebhookServiceStub(channel)
        assert await asyncio.to_thread(proc.stop) == 0
    finally:
        proc.kill()


async def test_private_addresses_refused_at_create_and_at_send(
    workdir: Path, receiver: Receiver
) -> None:
    db = workdir / "private.db"
    port = receiver.url.rsplit(":", 1)[1]
    literal_path, name_path = unique("ok"), unique("ok")
    # Made while private URLs were allowed...
    async with server_on(workdir, db, *PERMISSIVE) as stub:
        literal, _ = await make(stub, receiver.url + literal_path, secret="s")
        named, _ = await make(stub, f"http://localhost:{port}{name_path}")
        assert (await send_test(stub, literal)).success
    assert len(await arrivals(receiver, literal_path)) == 1

    # ...then the same database without --allow-private-urls (plain http still allowed).
    async with server_on(workdir, db, "--allowed-schemes", "http,https") as stub:
        for url in [f"{receiver.url}/ok", f"http://localhost:{port}/ok", "http://10.0.0.1/x"]:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await make(stub, url)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "non-public address" in e.value.details()
            assert "--allow-private-urls" in e.value.details()
        # Without private URLs a name must resolve: one that cannot is refused, saying so.
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await make(stub, "https://no-such-host.invalid/hook")
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "does not resolve" in e.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.updateWebhook(pb.UpdateWebhook(webhook_id=literal, url=f"{receiver.url}/x"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        for wid in (literal, named):
            result = await send_test(stub, wid)
            assert result.success is False
            assert not result.HasField("response_status")
            assert "refused" in result.error_message
    # Nothing more arrived: the literal got only the first test, the name none.
    assert len([r for r in receiver.received if r.path == literal_path]) == 1
    assert not [r for r in receiver.received if r.path == name_path]


# -- the delivery log ------------------------------------------------------------------


async def test_test_is_recorded_in_the_delivery_log(
    stub: pb_grpc.WebhookServiceStub, channel: grpc.aio.Channel, receiver: Receiver
) -> None:
    from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
    from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc

    deliveries = dpb_grpc.WebhookDeliveryServiceStub(channel)
    path = unique("ok")
    wid, _ = await make(stub, receiver.url + path, secret="logged")
    assert (await send_test(stub, wid)).success
    failing, _ = await make(stub, f"{receiver.url}/status/500")
    assert not (await send_test(stub, failing)).success
    (got,) = await arrivals(receiver, path)

    listed = await deliveries.listDeliveries(dpb.ListDeliveries(webhook_id=wid))
    (logged,) = listed.deliveries
    assert logged.test is True
    assert logged.webhook_id == wid
    assert logged.status == dpb.SUCCEEDED
    # The id the receiver saw is the delivery's id.
    assert logged.delivery_id == lower(got.headers)["x-mlflow-delivery-id"]
    assert logged.event == ev()
    full = (await deliveries.getDelivery(dpb.GetDelivery(delivery_id=logged.delivery_id))).delivery
    (attempt,) = full.attempts
    assert attempt.number == 1
    assert attempt.response_status == 200
    assert attempt.response_body == "ok"

    (failed,) = (await deliveries.listDeliveries(dpb.ListDeliveries(webhook_id=failing))).deliveries
    assert failed.test is True
    # A test is sent once: a failure is final, nothing is scheduled.
    assert failed.status == dpb.FAILED
    assert not failed.HasField("next_attempt_timestamp")
