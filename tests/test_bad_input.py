"""Client mistakes that once became 500 / INTERNAL: each is a 400 / INVALID_ARGUMENT that says
what was wrong, and nothing is stored. One server of its own, so the store can be counted."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from google.protobuf import struct_pb2

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from tests.support import ServerProcess, own_server

EVENTS = "/api/2.0/mlflow/webhook-events"
DELIVERIES = "/api/2.0/mlflow/webhook-deliveries"
PROMPT_TAG_DELETED = {"entity": "PROMPT_TAG", "action": "DELETED"}


@pytest.fixture(scope="module")
def bad_input_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    proc = own_server(tmp_path_factory.mktemp("bad-input"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def http(bad_input_server: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        bad_input_server.http_url, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        yield session


@pytest.fixture(scope="module")
async def channel(bad_input_server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(bad_input_server.grpc_address) as ch:
        yield ch


@pytest.fixture(scope="module")
async def subscribed(channel: grpc.aio.Channel) -> str:
    """A webhook that every event published here would reach, so a stored event shows as
    a delivery. It points nowhere that answers: nothing here must be delivered anyway."""
    stub = pb_grpc.WebhookServiceStub(channel)
    hook = await stub.createWebhook(
        pb.CreateWebhook(
            name="catch-all",
            url="http://127.0.0.1:9/never",
            events=[pb.WebhookEvent(entity=pb.PROMPT_TAG, action=pb.DELETED)],
        )
    )
    return hook.webhook.webhook_id


async def delivery_count(channel: grpc.aio.Channel, webhook_id: str) -> int:
    stub = dpb_grpc.WebhookDeliveryServiceStub(channel)
    page = await stub.listDeliveries(dpb.ListDeliveries(webhook_id=webhook_id, max_results=1000))
    return len(page.deliveries)


async def post(http: aiohttp.ClientSession, path: str, raw: bytes) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    async with http.post(path, data=raw, headers=headers) as response:
        return response.status, await response.json()


def nested_token(depth: int = 5_000) -> str:
    return base64.urlsafe_b64encode(b"[" * depth).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/api/2.0/mlflow/webhooks", DELIVERIES])
async def test_deeply_nested_page_token_is_400(http: aiohttp.ClientSession, path: str) -> None:
    async with http.get(path, params={"page_token": nested_token()}) as response:
        body = await response.json()
        assert response.status == 400, body
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "page_token" in body["message"]


async def test_deeply_nested_page_token_over_grpc(channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.WebhookServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.listWebhooks(pb.ListWebhooks(page_token=nested_token()))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (e.value.details() or "")


def publish_body(data_text: str, entity: str = '"PROMPT_TAG"') -> bytes:
    return (
        f'{{"event": {{"entity": {entity}, "action": "DELETED"}}, '
        f'"data": {{"name": "p", "key": "k", "extra": {data_text}}}}}'
    ).encode()


@pytest.mark.parametrize(
    ("case", "raw", "mentions"),
    [
        ("overflowing float", publish_body("1e999"), "1e999"),
        ("negative overflow", publish_body("-1e400"), "-1e400"),
        ("4000-digit integer", publish_body("9" * 4000), "too large"),
        ("fractional enum", publish_body("1", entity="1.5"), "entity"),
        ("float enum", publish_body("1", entity="7.0"), "entity"),
    ],
)
async def test_rest_publish_refuses_numbers_json_cannot_carry(
    http: aiohttp.ClientSession,
    channel: grpc.aio.Channel,
    subscribed: str,
    case: str,
    raw: bytes,
    mentions: str,
) -> None:
    before = await delivery_count(channel, subscribed)
    status, body = await post(http, EVENTS, raw)
    assert status == 400, (case, body)
    assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "MALFORMED_REQUEST"), body
    assert mentions in body["message"], body
    assert await delivery_count(channel, subscribed) == before


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_grpc_publish_refuses_nan_and_infinity(
    channel: grpc.aio.Channel, subscribed: str, number: float
) -> None:
    before = await delivery_count(channel, subscribed)
    request = dpb.PublishEvent(event=pb.WebhookEvent(entity=pb.PROMPT_TAG, action=pb.DELETED))
    request.data.update({"name": "p", "key": "k", "nested": {"list": [1, number]}})
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await dpb_grpc.WebhookDeliveryServiceStub(channel).publishEvent(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "data" in (e.value.details() or "")
    assert await delivery_count(channel, subscribed) == before


def with_invalid_utf8(message: object, marker: str) -> bytes:
    """The message's wire bytes with `marker` (a string field's value) made invalid UTF-8."""
    raw = message.SerializeToString()  # type: ignore[attr-defined]
    assert raw.count(marker.encode()) == 1
    return raw.replace(marker.encode(), b"\xff\xfe" + marker.encode()[2:])


@pytest.mark.parametrize(
    ("method", "raw", "response_class"),
    [
        (
            "/mlflow.WebhookService/createWebhook",
            with_invalid_utf8(
                pb.CreateWebhook(
                    name="zzname",
                    url="http://127.0.0.1:9/",
                    events=[pb.WebhookEvent(entity=pb.PROMPT_TAG, action=pb.DELETED)],
                ),
                "zzname",
            ),
            pb.CreateWebhook.Response,
        ),
        (
            "/mlflow.WebhookService/getWebhook",
            with_invalid_utf8(pb.GetWebhook(webhook_id="zzid"), "zzid"),
            pb.GetWebhook.Response,
        ),
        (
            "/mlflow.WebhookDeliveryService/publishEvent",
            with_invalid_utf8(
                dpb.PublishEvent(
                    event=pb.WebhookEvent(entity=pb.PROMPT_TAG, action=pb.DELETED),
                    data=struct_pb2.Struct(
                        fields={
                            "name": struct_pb2.Value(string_value="p"),
                            "key": struct_pb2.Value(string_value="k"),
                        }
                    ),
                    idempotency_key="zzkey",
                ),
                "zzkey",
            ),
            dpb.PublishEvent.Response,
        ),
    ],
)
async def test_grpc_invalid_utf8_is_invalid_argument(
    channel: grpc.aio.Channel, subscribed: str, method: str, raw: bytes, response_class: type
) -> None:
    before = await delivery_count(channel, subscribed)
    call = channel.unary_unary(
        method, request_serializer=None, response_deserializer=response_class.FromString
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call(raw)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "UTF-8" in (e.value.details() or "")
    assert await delivery_count(channel, subscribed) == before
    stub = pb_grpc.WebhookServiceStub(channel)
    names = [w.name for w in (await stub.listWebhooks(pb.ListWebhooks())).webhooks]
    assert names == ["catch-all"]


def big_publish(size: int, blob: str = "") -> dpb.PublishEvent:
    request = dpb.PublishEvent(event=pb.WebhookEvent(entity=pb.PROMPT_TAG, action=pb.DELETED))
    request.data.update({"name": "p", "key": "k", "blob": blob or "x" * size})
    return request


def rest_publish(blob: str) -> bytes:
    return json.dumps(
        {"event": PROMPT_TAG_DELETED, "data": {"name": "p", "key": "k", "blob": blob}}
    ).encode()


async def test_one_event_size_limit_on_both_transports(
    http: aiohttp.ClientSession, channel: grpc.aio.Channel, subscribed: str
) -> None:
    """The default limit is 1 MiB on both: a 1.5 MB event is refused over gRPC as it is over
    REST, and nothing is stored; a 900 kB one is taken over both."""
    before = await delivery_count(channel, subscribed)
    stub = dpb_grpc.WebhookDeliveryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.publishEvent(big_publish(1_500_000))
    assert e.value.code() in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ), e.value.details()
    assert "1048576" in (e.value.details() or ""), e.value.details()
    status, body = await post(
        http,
        EVENTS,
        rest_publish("x" * 1_500_000),
    )
    assert status == 413 and "1048576" in body["message"], body
    assert await delivery_count(channel, subscribed) == before
    await stub.publishEvent(big_publish(900_000))
    status, body = await post(
        http,
        EVENTS,
        rest_publish("x" * 900_000),
    )
    assert status == 200, body
    assert await delivery_count(channel, subscribed) == before + 2


async def test_event_limit_is_on_the_body_as_delivered(
    http: aiohttp.ClientSession, channel: grpc.aio.Channel, subscribed: str
) -> None:
    """A request under the limit can make a body over it (JSON escapes each "é" as six
    bytes): refused on both transports, with the size, and nothing stored."""
    before = await delivery_count(channel, subscribed)
    blob = "é" * 300_000  # 600 kB as UTF-8, 1.8 MB as delivered
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await dpb_grpc.WebhookDeliveryServiceStub(channel).publishEvent(big_publish(0, blob=blob))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "at most 1048576" in (e.value.details() or "")
    raw = json.dumps(
        {"event": PROMPT_TAG_DELETED, "data": {"name": "p", "key": "k", "blob": blob}},
        ensure_ascii=False,
    ).encode()
    status, body = await post(http, EVENTS, raw)
    assert status == 400 and "at most 1048576" in body["message"], body
    assert await delivery_count(channel, subscribed) == before
