"""Event delivery end to end: a real server process, real receivers, the real outbox."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiohttp import web
from google.protobuf import json_format, struct_pb2
from standardwebhooks.webhooks import Webhook as StandardWebhook

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from mlflow_webhooks.server.delivery import aimd
from mlflow_webhooks.server.events import EVENTS
from tests.conftest import PERMISSIVE
from tests.support import Receiver, ServerProcess, run_server

MV_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
MV_DATA = {
    "name": "churn",
    "version": "3",
    "source": "models:/churn/3",
    "run_id": None,
    "tags": {"team": "risk"},
    "description": "retrained",
}


@dataclass
class Api:
    server: ServerProcess
    hooks: pb_grpc.WebhookServiceStub
    deliveries: dpb_grpc.WebhookDeliveryServiceStub
    created: list[str] = field(default_factory=list)

    async def webhook(self, url: str, *events: pb.WebhookEvent, **fields) -> pb.Webhook:
        request = pb.CreateWebhook(name="hook", url=url, events=events or [MV_CREATED], **fields)
        hook = (await self.hooks.createWebhook(request)).webhook
        self.created.append(hook.webhook_id)
        return hook

    async def forget(self) -> None:
        """Deletes what this test created, so the next test's events reach only its own."""
        for webhook_id in self.created:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=webhook_id))
        self.created.clear()

    async def publish(
        self, data: dict | None = None, event: pb.WebhookEvent = MV_CREATED, key: str = ""
    ) -> dpb.PublishEvent.Response:
        request = dpb.PublishEvent(event=event, idempotency_key=key)
        request.data.update(MV_DATA if data is None else data)
        return await self.deliveries.publishEvent(request)

    async def delivery(self, delivery_id: str) -> dpb.Delivery:
        response = await self.deliveries.getDelivery(dpb.GetDelivery(delivery_id=delivery_id))
        return response.delivery

    async def settled(self, delivery_id: str, timeout: float = 20.0) -> dpb.Delivery:
        """The delivery once it is no longer PENDING (polled: the log is in the server)."""
        async with asyncio.timeout(timeout):
            while True:
                found = await self.delivery(delivery_id)
                if found.status != dpb.PENDING:
                    return found
                await asyncio.sleep(0.05)


def make_api(server: ServerProcess, channel: grpc.aio.Channel) -> Api:
    return Api(
        server, pb_grpc.WebhookServiceStub(channel), dpb_grpc.WebhookDeliveryServiceStub(channel)
    )


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """A server with quick retries (3 retries 50 ms apart) and a 1 s attempt timeout."""
    workdir = tmp_path_factory.mktemp("delivery")
    server = run_server(
        workdir,
        *PERMISSIVE,
        "--retry-schedule",
        "0.05,0.05,0.05",
        "--delivery-timeout",
        "1",
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
    )
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        yield make_api(server, channel)
    server.stop()


@pytest.fixture
async def rx(api: Api) -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await api.forget()
    await receiver.stop()


def expected_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return (
        "v1,"
        + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    )


async def test_payload_headers_and_signatures(api: Api, rx: Receiver) -> None:
    secret = "whsec-test-s3cret"
    hook = await api.webhook(f"{rx.url}/ok", secret=secret)
    published = await api.publish()
    assert len(published.delivery_ids) == 1
    [got] = await rx.wait_for(1)
    body = json.loads(got.body)
    assert set(body) == {"entity", "action", "timestamp", "data"}
    assert (body["entity"], body["action"], body["data"]) == ("model_version", "created", MV_DATA)
    assert body["timestamp"].endswith("+00:00")
    headers = got.headers
    delivery_id = published.delivery_ids[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-MLflow-Delivery-Id"] == headers["webhook-id"] == delivery_id
    assert headers["X-MLflow-Timestamp"] == headers["webhook-timestamp"]
    want = expected_signature(secret, delivery_id, headers["webhook-timestamp"], got.body)
    assert headers["X-MLflow-Signature"] == headers["webhook-signature"] == want
    # A Standard Webhooks receiver verifies it given "whsec_" + base64(secret bytes).
    verifier = StandardWebhook("whsec_" + base64.b64encode(secret.encode()).decode())
    assert verifier.verify(got.body, {k.lower(): v for k, v in headers.items()}) == body
    delivery = await api.settled(delivery_id)
    assert delivery.status == dpb.SUCCEEDED
    assert delivery.webhook_id == hook.webhook_id and delivery.event == MV_CREATED
    assert [a.response_status for a in delivery.attempts] == [200]


async def test_integers_stay_integers(api: Api, rx: Receiver) -> None:
    event = pb.WebhookEvent(entity=pb.BUDGET_POLICY, action=pb.EXCEEDED)
    await api.webhook(f"{rx.url}/ok", event)
    data = dict(EVENTS[(pb.BUDGET_POLICY, pb.EXCEEDED)].example, current_spend=105.5, extra=7)
    await api.publish(data, event)
    [got] = await rx.wait_for(1)
    # The raw text, not only the parsed value: 1704067200000 must not arrive as 1.7e12.
    assert b'"window_start": 1704067200000' in got.body
    # Struct keeps no key order, so each value is matched with whatever follows it.
    assert re.search(rb'"duration_value": 1[,}]', got.body)
    assert re.search(rb'"extra": 7[,}]', got.body)
    assert json.loads(got.body)["data"]["current_spend"] == 105.5


async def test_fail_twice_then_succeed_keeps_the_delivery_id(api: Api, rx: Receiver) -> None:
    await api.webhook(f"{rx.url}/flaky/2")
    [delivery_id] = (await api.publish()).delivery_ids
    await rx.wait_for(3)
    assert rx.delivery_ids() == [delivery_id] * 3
    # The body is made once, at publish: every attempt sends the very same bytes.
    assert len({r.body for r in rx.received}) == 1
    delivery = await api.settled(delivery_id)
    assert delivery.status == dpb.SUCCEEDED
    assert [a.response_status for a in delivery.attempts] == [503, 503, 200]
    assert [a.number for a in delivery.attempts] == [1, 2, 3]


async def test_retries_stop_after_the_schedule(api: Api, rx: Receiver) -> None:
    await api.webhook(f"{rx.url}/status/500")
    [delivery_id] = (await api.publish()).delivery_ids
    delivery = await api.settled(delivery_id)
    assert delivery.status == dpb.FAILED
    assert len(delivery.attempts) == 4  # the first attempt and three retries
    assert len(rx.received) == 4


async def test_retry_after_is_honoured(api: Api, rx: Receiver) -> None:
    await api.webhook(f"{rx.url}/retry-after/1")
    [delivery_id] = (await api.publish()).delivery_ids
    delivery = await api.settled(delivery_id)
    assert delivery.status == dpb.SUCCEEDED
    first, second = delivery.attempts
    assert first.response_status == 429
    # The schedule says 50 ms; the receiver asked for a second.
    assert second.timestamp - first.timestamp >= 900


@pytest.mark.parametrize(
    ("path", "status"), [("status/404", 404), ("redirect", 302), ("status/400", 400)]
)
async def test_final_failures_are_not_retried(
    api: Api, rx: Receiver, path: str, status: int
) -> None:
    await api.webhook(f"{rx.url}/{path}")
    [delivery_id] = (await api.publish()).delivery_ids
    delivery = await api.settled(delivery_id)
    assert delivery.status == dpb.FAILED
    assert [a.response_status for a in delivery.attempts] == [status]
    assert len(rx.received) == 1


async def test_gone_disables_the_webhook(api: Api, rx: Receiver) -> None:
    hook = await api.webhook(f"{rx.url}/status/410")
    [delivery_id] = (await api.publish()).delivery_ids
    assert (await api.settled(delivery_id)).status == dpb.FAILED
    got = await api.hooks.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id))
    assert got.webhook.status == pb.DISABLED
    assert hook.webhook_id not in [d for d in (await api.publish()).delivery_ids]


@pytest.mark.parametrize("path", ["slow", "close"])
async def test_timeouts_and_dropped_connections_are_retried(
    api: Api, rx: Receiver, path: str
) -> None:
    await api.webhook(f"{rx.url}/{path}")
    [delivery_id] = (await api.publish()).delivery_ids
    delivery = await api.settled(delivery_id, timeout=30)
    assert delivery.status == dpb.FAILED
    assert len(delivery.attempts) == 4
    assert all(a.error and not a.HasField("response_status") for a in delivery.attempts)


async def test_only_active_subscribed_webhooks_get_deliveries(api: Api, rx: Receiver) -> None:
    active = await api.webhook(f"{rx.url}/ok")
    await api.webhook(f"{rx.url}/ok", status=pb.DISABLED)
    other = pb.WebhookEvent(entity=pb.PROMPT, action=pb.CREATED)
    await api.webhook(f"{rx.url}/ok", other)
    published = await api.publish()
    webhook_ids = [(await api.delivery(d)).webhook_id for d in published.delivery_ids]
    assert webhook_ids == [active.webhook_id]


async def test_a_change_is_seen_by_the_next_event(api: Api, rx: Receiver) -> None:
    event = pb.WebhookEvent(entity=pb.PROMPT_TAG, action=pb.SET)
    data = {"name": "p", "key": "k", "value": "v"}
    hook = await api.webhook(f"{rx.url}/ok", event)
    assert len((await api.publish(data, event)).delivery_ids) == 1
    update = pb.UpdateWebhook(webhook_id=hook.webhook_id, status=pb.DISABLED)
    await api.hooks.updateWebhook(update)
    assert (await api.publish(data, event)).delivery_ids == []
    await api.hooks.updateWebhook(pb.UpdateWebhook(webhook_id=hook.webhook_id, status=pb.ACTIVE))
    assert len((await api.publish(data, event)).delivery_ids) == 1
    await api.hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=hook.webhook_id))
    assert (await api.publish(data, event)).delivery_ids == []


async def test_deleting_a_webhook_cancels_its_pending_deliveries(
    tmp_path: Path, rx: Receiver
) -> None:
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--retry-schedule",
        "3600",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            api = make_api(server, channel)
            hook = await api.webhook(f"{rx.url}/status/503")
            [delivery_id] = (await api.publish()).delivery_ids
            await rx.wait_for(1)
            async with asyncio.timeout(10):
                while not (await api.delivery(delivery_id)).attempts:
                    await asyncio.sleep(0.05)
            waiting = await api.delivery(delivery_id)
            assert waiting.status == dpb.PENDING and waiting.next_attempt_timestamp > 0
            await api.hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=hook.webhook_id))
            cancelled = await api.delivery(delivery_id)
            assert cancelled.status == dpb.CANCELLED
            assert not cancelled.HasField("next_attempt_timestamp")
    finally:
        assert server.stop() == 0


async def test_idempotency_key_answers_the_first_ids(api: Api, rx: Receiver) -> None:
    await api.webhook(f"{rx.url}/ok")
    first = await api.publish(key="release-42")
    again = await api.publish(key="release-42")
    assert (again.event_id, list(again.delivery_ids)) == (first.event_id, list(first.delivery_ids))
    other = await api.publish(key="release-43")
    assert other.event_id != first.event_id
    await rx.wait_for(2)
    assert sorted(rx.delivery_ids()) == sorted([*first.delivery_ids, *other.delivery_ids])


async def test_idempotency_key_reused_for_another_event_is_refused(api: Api, rx: Receiver) -> None:
    hook = await api.webhook(f"{rx.url}/ok")
    first = await api.publish(key="release-44")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await api.publish({**MV_DATA, "version": "4"}, key="release-44")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "release-44" in (e.value.details() or "")
    async with aiohttp.ClientSession() as http:
        url = f"{api.server.http_url}/api/2.0/mlflow/webhook-events"
        body = {
            "event": {"entity": "MODEL_VERSION", "action": "CREATED"},
            "data": {**MV_DATA, "version": "5"},
            "idempotency_key": "release-44",
        }
        async with http.post(url, json=body) as response:
            refused = await response.json()
            assert response.status == 400, refused
        assert refused["error_code"] == "RESOURCE_ALREADY_EXISTS"
        assert first.event_id in refused["message"]
        body["data"] = MV_DATA
        async with http.post(url, json=body) as response:
            assert (await response.json())["event_id"] == first.event_id
    listed = await api.deliveries.listDeliveries(dpb.ListDeliveries(webhook_id=hook.webhook_id))
    assert [d.delivery_id for d in listed.deliveries] == list(first.delivery_ids)


async def test_redeliver_sends_again_with_the_same_id(api: Api, rx: Receiver) -> None:
    await api.webhook(f"{rx.url}/ok")
    [delivery_id] = (await api.publish()).delivery_ids
    await api.settled(delivery_id)
    response = await api.deliveries.redeliver(dpb.Redeliver(delivery_id=delivery_id))
    assert response.delivery.status == dpb.SUCCEEDED
    assert [a.number for a in response.delivery.attempts] == [1, 2]
    assert rx.delivery_ids() == [delivery_id, delivery_id]
    assert rx.received[0].body == rx.received[1].body


async def test_test_webhook_sends_are_logged(api: Api, rx: Receiver) -> None:
    hook = await api.webhook(f"{rx.url}/ok")
    await api.hooks.testWebhook(pb.TestWebhook(webhook_id=hook.webhook_id))
    listed = await api.deliveries.listDeliveries(dpb.ListDeliveries(webhook_id=hook.webhook_id))
    [logged] = listed.deliveries
    assert logged.test and logged.status == dpb.SUCCEEDED
    assert logged.delivery_id == rx.delivery_ids()[0]
    full = await api.delivery(logged.delivery_id)
    assert full.attempts[0].response_body == "ok"


async def test_list_deliveries_filters_and_pages(api: Api, rx: Receiver) -> None:
    hook = await api.webhook(f"{rx.url}/ok")
    ids = [d for _ in range(5) for d in (await api.publish()).delivery_ids if d]
    await rx.wait_for(len(ids))
    seen: list[str] = []
    token = ""
    while True:
        page = await api.deliveries.listDeliveries(
            dpb.ListDeliveries(webhook_id=hook.webhook_id, max_results=2, page_token=token)
        )
        seen += [d.delivery_id for d in page.deliveries]
        if not page.HasField("next_page_token"):
            break
        token = page.next_page_token
    mine = set(ids)
    assert [d for d in seen if d in mine] == [d for d in seen]
    assert set(seen) == mine and len(seen) == len(mine)
    by_event = await api.deliveries.listDeliveries(dpb.ListDeliveries(event_id="nope"))
    assert list(by_event.deliveries) == []
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.deliveries.listDeliveries(dpb.ListDeliveries(page_token="garbage!"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_delivery_is_not_found(api: Api) -> None:
    for call in (
        api.deliveries.getDelivery(dpb.GetDelivery(delivery_id="missing")),
        api.deliveries.redeliver(dpb.Redeliver(delivery_id="missing")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert "Delivery with ID missing not found." in error.value.details()


BAD_PUBLISHES = [
    (pb.WebhookEvent(), MV_DATA, "entity"),
    (pb.WebhookEvent(entity=pb.MODEL_VERSION), MV_DATA, "action"),
    (pb.WebhookEvent(entity=pb.REGISTERED_MODEL, action=pb.DELETED), MV_DATA, "'deleted'"),
    (MV_CREATED, {k: v for k, v in MV_DATA.items() if k != "source"}, "data.source"),
    (MV_CREATED, {**MV_DATA, "version": 3}, "data.version must be a string"),
    (MV_CREATED, {**MV_DATA, "tags": "x"}, "data.tags must be a object"),
    (MV_CREATED, {**MV_DATA, "name": None}, "data.name"),
]


@pytest.mark.parametrize(("event", "data", "named"), BAD_PUBLISHES)
async def test_bad_publishes_store_nothing(
    api: Api, rx: Receiver, event: pb.WebhookEvent, data: dict, named: str
) -> None:
    await api.webhook(f"{rx.url}/ok", MV_CREATED)
    before = await api.deliveries.listDeliveries(dpb.ListDeliveries(max_results=1000))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await api.publish(data, event)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in error.value.details()
    after = await api.deliveries.listDeliveries(dpb.ListDeliveries(max_results=1000))
    # Ids, not whole messages: earlier deliveries may still change status meanwhile.
    assert [d.delivery_id for d in after.deliveries] == [d.delivery_id for d in before.deliveries]


async def test_publish_without_data_is_refused(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await api.deliveries.publishEvent(dpb.PublishEvent(event=MV_CREATED))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "data" in error.value.details()


async def test_one_slow_webhook_does_not_starve_the_others(api: Api, rx: Receiver) -> None:
    event = pb.WebhookEvent(entity=pb.PROMPT_ALIAS, action=pb.DELETED)
    await api.webhook(f"{rx.url}/slow", event)
    await api.webhook(f"{rx.url}/ok", event)
    for _ in range(40):
        await api.publish({"name": "p", "alias": "a"}, event)
    async with rx.arrived:
        await asyncio.wait_for(rx.arrived.wait_for(lambda: len(rx.bodies("/ok")) >= 40), timeout=20)


async def test_kill_9_loses_nothing(tmp_path: Path, rx: Receiver) -> None:
    """A backlog to a slow receiver, the server killed mid-way, restarted on the same
    database: every delivery arrives (duplicates allowed, with the same id)."""
    database = f"sqlite:///{tmp_path}/webhooks.db"
    args = (*PERMISSIVE, "--delivery-timeout", "1", "--database-url", database)
    server = run_server(tmp_path, *args)
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            api = make_api(server, channel)
            # 0.2 s each, 4 at once at first, doubling each round trip up to 32: 150 take
            # over a second to drain, and the kill comes after the first 10.
            await api.webhook(f"{rx.url}/delay/0.2")
            answers = await asyncio.gather(*(api.publish() for _ in range(150)))
            published = [d for answer in answers for d in answer.delivery_ids]
            await rx.wait_for(10)
    finally:
        server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        server.proc.wait(timeout=10)  # type: ignore[union-attr]
    assert len(set(rx.delivery_ids())) < len(published)
    restarted = run_server(tmp_path, *args)
    try:
        async with rx.arrived:
            # Leases of the killed process expire after delivery timeout + 10 s.
            await asyncio.wait_for(
                rx.arrived.wait_for(lambda: set(rx.delivery_ids()) >= set(published)), 60
            )
        assert set(rx.delivery_ids()) == set(published)
    finally:
        assert restarted.stop() == 0


async def test_sigterm_hands_back_in_flight_deliveries(tmp_path: Path, rx: Receiver) -> None:
    database = f"sqlite:///{tmp_path}/webhooks.db"
    args = (*PERMISSIVE, "--delivery-timeout", "1", "--database-url", database)
    server = run_server(tmp_path, *args)
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        api = make_api(server, channel)
        await api.webhook(f"{rx.url}/delay/0.05")
        published = [d for _ in range(60) for d in (await api.publish()).delivery_ids]
        await rx.wait_for(1)
    assert server.stop() == 0
    restarted = run_server(tmp_path, *args)
    try:
        async with rx.arrived:
            await asyncio.wait_for(
                rx.arrived.wait_for(lambda: set(rx.delivery_ids()) >= set(published)), 30
            )
    finally:
        assert restarted.stop() == 0


def test_struct_roundtrip_of_published_data() -> None:
    data = struct_pb2.Struct()
    data.update({"n": 1704067200000})
    assert json_format.MessageToDict(data) == {"n": 1704067200000.0}


async def test_every_event_type_publishes_over_rest(api: Api, rx: Receiver) -> None:
    """Each (entity, action) published through the JSON shim reaches its subscriber with
    the data as sent."""
    for entity, action in EVENTS:
        await api.webhook(f"{rx.url}/ok", pb.WebhookEvent(entity=entity, action=action))
    async with aiohttp.ClientSession() as http:
        for (entity, action), spec in EVENTS.items():
            body = {
                "event": {
                    "entity": pb.WebhookEntity.Name(entity),
                    "action": pb.WebhookAction.Name(action),
                },
                "data": spec.example,
            }
            url = f"{api.server.http_url}/api/2.0/mlflow/webhook-events"
            async with http.post(url, json=body) as response:
                assert response.status == 200, await response.text()
                assert len((await response.json())["delivery_ids"]) == 1
    received = await rx.wait_for(len(EVENTS))
    got = {
        (b["entity"], b["action"]): b["data"] for b in map(json.loads, (r.body for r in received))
    }
    assert got == {
        (pb.WebhookEntity.Name(e).lower(), pb.WebhookAction.Name(a).lower()): spec.example
        for (e, a), spec in EVENTS.items()
    }


async def test_cookies_a_receiver_sets_are_never_sent_back(api: Api, rx: Receiver) -> None:
    """A receiver's Set-Cookie is dropped: kept, it would go with every later delivery to
    that host, to other owners' webhooks too. (By name, not IP: aiohttp's jar keeps no
    cookies for IP addresses anyway.)"""

    async def set_cookie(_: object) -> web.StreamResponse:
        response = web.Response(text="ok")
        response.set_cookie("session", "owner-a", path="/")
        return response

    rx.script = set_cookie
    await api.webhook(f"http://localhost:{rx.port}/script")
    await api.webhook(f"http://localhost:{rx.port}/ok")
    await api.publish()
    await rx.wait_for(2)
    await api.publish()
    received = await rx.wait_for(4)
    assert [r.headers.get("Cookie") for r in received] == [None] * 4


async def test_a_slow_webhook_holds_at_most_its_share_of_slots(tmp_path: Path) -> None:
    """However many of its deliveries one claim returns, a webhook has at most its window in
    flight (the rest are handed back), so the others keep the remaining slots."""
    receiver = await Receiver().start()
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--delivery-timeout",
        "60",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            api = make_api(server, channel)
            event = pb.WebhookEvent(entity=pb.PROMPT_ALIAS, action=pb.DELETED)
            await api.webhook(f"{receiver.url}/slow", event)
            await api.webhook(f"{receiver.url}/ok", event)
            await asyncio.gather(
                *(api.publish({"name": "p", "alias": "a"}, event) for _ in range(40))
            )
            async with receiver.arrived:
                await asyncio.wait_for(
                    receiver.arrived.wait_for(lambda: len(receiver.bodies("/ok")) >= 40), 20
                )
            # The slow ones never answer within the test, so the window stays at its start:
            # exactly that many of them were sent, each once.
            assert len(receiver.delivery_ids("/slow")) == aimd.SLOW_START
    finally:
        await receiver.stop()
        assert server.stop() == 0


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"name": "churn", "n": 1704067200000, "f": 0.25, "big": 2.0**60, "neg": -3},
        {"nested": {"list": [1, "a", None, True, {"deep": [[]]}], "empty": {}}, "null": None},
        {"unicode": "é\u2028", "flag": False},
    ],
)
def test_published_data_is_read_as_json_format_reads_it(data: dict) -> None:
    from mlflow_webhooks.server.rpc import plain_json

    struct = struct_pb2.Struct()
    struct.update(data)
    expected = json_format.MessageToDict(struct)

    def integral(value):  # what publishing always did with json_format's doubles
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        if isinstance(value, dict):
            return {k: integral(v) for k, v in value.items()}
        if isinstance(value, list):
            return [integral(v) for v in value]
        return value

    got = plain_json(struct)
    assert json.dumps(got) == json.dumps(integral(expected))
    for bad in (float("nan"), float("inf")):
        struct["x"] = bad
        with pytest.raises(ValueError):
            plain_json(struct)
