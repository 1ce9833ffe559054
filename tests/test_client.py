"""The Python client (clients/python) against real server subprocesses."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator

import grpc
import pytest

from mlflow_webhooks.clients.python import (
    WebhooksClient,
    WebhooksError,
    event_name,
    parse_event,
    to_json,
)
from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhooks_pb2 as pb
from tests.conftest import PERMISSIVE
from tests.support import Receiver, ServerProcess, make_certificates, run_server

DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"


@pytest.fixture
def client(server: ServerProcess) -> Iterator[WebhooksClient]:
    with WebhooksClient(server.grpc_address) as c:
        yield c


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def wait_for_delivery(receiver: Receiver, delivery_id: str, count: int = 1) -> None:
    """Until the receiver has `count` POSTs of this delivery; the receiver is shared."""

    def arrived() -> bool:
        hits = [r for r in receiver.received if r.headers.get(DELIVERY_ID_HEADER) == delivery_id]
        return len(hits) >= count

    async with receiver.arrived:
        await asyncio.wait_for(receiver.arrived.wait_for(arrived), 20)


def test_create_get_update_delete(client: WebhooksClient) -> None:
    name = unique("client")
    created = client.create(
        name,
        "http://127.0.0.1:9/hook",
        ["model_version.created", (pb.REGISTERED_MODEL, pb.CREATED)],
        description="made by the client test",
        secret="s3cret",
    )
    assert created.name == name
    assert created.status == pb.ACTIVE
    assert [event_name(e) for e in created.events] == [
        "model_version.created",
        "registered_model.created",
    ]
    assert created.creation_timestamp == created.last_updated_timestamp
    assert client.get(created.webhook_id) == created

    updated = client.update(
        created.webhook_id, status="disabled", events=["model_version_tag.set"], description=""
    )
    assert updated.status == pb.DISABLED
    assert updated.name == name
    assert [event_name(e) for e in updated.events] == ["model_version_tag.set"]
    assert updated.description == ""
    assert updated.last_updated_timestamp > created.last_updated_timestamp
    assert client.get(created.webhook_id) == updated

    client.delete(created.webhook_id)
    with pytest.raises(WebhooksError) as e:
        client.get(created.webhook_id)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert e.value.message == f"Webhook with ID {created.webhook_id} not found."


def test_rotate_secret(client: WebhooksClient) -> None:
    hook = client.create(unique("rotated"), "http://127.0.0.1:9/x", ["prompt.created"], secret="a")
    given = client.rotate_secret(hook.webhook_id, "b", overlap_seconds=60)
    assert given.webhook.webhook_id == hook.webhook_id
    assert not given.HasField("secret") and given.HasField("previous_secret_expires_timestamp")
    generated = client.rotate_secret(hook.webhook_id)  # 24 hours' overlap
    assert len(generated.secret) == 43
    assert (
        generated.previous_secret_expires_timestamp - given.previous_secret_expires_timestamp
        >= (86_400_000 - 60_000)
    )
    without = client.rotate_secret(hook.webhook_id, "c", overlap_seconds=0)
    assert not without.HasField("previous_secret_expires_timestamp")
    with pytest.raises(WebhooksError) as e:
        client.rotate_secret(hook.webhook_id, overlap_seconds=604_801)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    client.delete(hook.webhook_id)


def test_iter_webhooks_across_pages(fresh_server: ServerProcess) -> None:
    with WebhooksClient(fresh_server.grpc_address) as client:
        ids = [
            client.create(f"page-{i}", f"http://127.0.0.1:9/{i}", ["prompt.created"]).webhook_id
            for i in range(7)
        ]
        first = client.list_page(max_results=3)
        assert len(first.webhooks) == 3
        assert first.next_page_token

        seen = list(client.iter_webhooks(page_size=3))
        assert sorted(w.webhook_id for w in seen) == sorted(ids)
        # Newest first; webhooks made within the same millisecond come in id order.
        newest_first = sorted(seen, key=lambda w: (w.creation_timestamp, w.webhook_id))[::-1]
        assert seen == newest_first

        pages, token = 0, None
        while True:
            page = client.list_page(3, token)
            pages += 1
            if not page.HasField("next_page_token"):
                break
            token = page.next_page_token
        assert pages == 3
        assert list(client.iter_webhooks()) == seen


async def test_test_webhook_reaches_receiver(server: ServerProcess, receiver: Receiver) -> None:
    # The receiver runs on this event loop, so blocking client calls go to a thread.
    with WebhooksClient(server.grpc_address) as client:
        webhook = await asyncio.to_thread(
            client.create, unique("tested"), f"{receiver.url}/ok", ["model_version.created"]
        )
        result = await asyncio.to_thread(client.test, webhook.webhook_id)
        assert result.success
        assert result.response_status == 200
        assert result.response_body == "ok"

        failed = await asyncio.to_thread(
            client.update, webhook.webhook_id, url=f"{receiver.url}/status/500"
        )
        result = await asyncio.to_thread(client.test, failed.webhook_id, "model_version.created")
        assert not result.success
        assert result.response_status == 500


@pytest.mark.parametrize(
    ("url", "events", "fragment"),
    [
        ("ftp://example.com/x", ["model_version.created"], "Invalid webhook URL scheme: 'ftp'"),
        ("   ", ["model_version.created"], "Webhook URL cannot be empty"),
        (
            "http://127.0.0.1:9/x",
            ["registered_model.deleted"],
            "Invalid action 'deleted' for entity 'registered_model'",
        ),
        ("http://127.0.0.1:9/x", [], "Webhook events cannot be empty"),
    ],
)
def test_invalid_arguments_raise(
    client: WebhooksClient, url: str, events: list[str], fragment: str
) -> None:
    with pytest.raises(WebhooksError) as e:
        client.create(unique("bad"), url, events)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in e.value.message
    assert str(e.value).startswith("INVALID_ARGUMENT: ")


def test_not_found_on_every_webhook_call(client: WebhooksClient) -> None:
    missing = str(uuid.uuid4())
    calls = [
        lambda: client.get(missing),
        lambda: client.update(missing, name="x"),
        lambda: client.delete(missing),
        lambda: client.test(missing),
    ]
    for call in calls:
        with pytest.raises(WebhooksError) as e:
            call()
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        assert missing in e.value.message


def test_bad_page_arguments(client: WebhooksClient) -> None:
    with pytest.raises(WebhooksError) as e:
        client.list_page(max_results=1001)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(WebhooksError) as e:
        client.list_page(page_token="not-a-token")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_event_spelling_fails_before_calling() -> None:
    with pytest.raises(ValueError, match=r"ENTITY\.ACTION"):
        parse_event("model_version")
    with pytest.raises(ValueError, match=r"ENTITY\.ACTION"):
        parse_event("model.created")
    assert parse_event(" Model_Version.CREATED ") == pb.WebhookEvent(
        entity=pb.MODEL_VERSION, action=pb.CREATED
    )


def test_unreachable_server_raises_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        WebhooksClient(f"127.0.0.1:{port}", timeout=5) as client,
        pytest.raises(WebhooksError) as e,
    ):
        client.get("x")
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert f"127.0.0.1:{port}" in e.value.message


def test_silent_server_is_bounded_by_the_deadline() -> None:
    # Accepts TCP connections (the kernel's backlog does) but never speaks HTTP/2.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        address = f"127.0.0.1:{s.getsockname()[1]}"
        with WebhooksClient(address, timeout=1) as client, pytest.raises(WebhooksError) as e:
            client.get("x")
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert address in e.value.message


def test_to_json_matches_the_shim_format() -> None:
    webhook = pb.Webhook(
        webhook_id="w",
        name="n",
        events=[pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)],
        status=pb.ACTIVE,
        creation_timestamp=1700000000123,
    )
    assert to_json(webhook) == {
        "webhook_id": "w",
        "name": "n",
        "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
        "status": "ACTIVE",
        "creation_timestamp": 1700000000123,
    }
    assert to_json(pb.DeleteWebhook.Response()) == {}


# Publishing and the delivery log (mlflow.WebhookDeliveryService)


async def test_publish_list_get_and_redeliver(
    delivery_server: ServerProcess, receiver: Receiver
) -> None:
    with WebhooksClient(delivery_server.grpc_address) as client:
        webhook = await asyncio.to_thread(
            client.create, unique("subscriber"), f"{receiver.url}/ok", ["model_version_tag.set"]
        )
        data = {"name": "m", "version": "3", "key": "stage", "value": "prod", "extra": 42}
        published = await asyncio.to_thread(client.publish, "model_version_tag.set", data)
        assert published.event_id
        assert len(published.delivery_ids) == 1
        delivery_id = published.delivery_ids[0]
        await wait_for_delivery(receiver, delivery_id)

        listed = await asyncio.to_thread(
            lambda: list(client.deliveries(webhook_id=webhook.webhook_id, page_size=1))
        )
        assert [d.delivery_id for d in listed] == [delivery_id]
        assert listed[0].event_id == published.event_id
        assert event_name(listed[0].event) == "model_version_tag.set"
        by_event = await asyncio.to_thread(
            lambda: list(client.deliveries(event_id=published.event_id))
        )
        assert [d.delivery_id for d in by_event] == [delivery_id]

        got = await asyncio.to_thread(client.delivery, delivery_id)
        assert got.webhook_id == webhook.webhook_id
        assert got.status in (dpb.PENDING, dpb.SUCCEEDED)

        again = await asyncio.to_thread(client.redeliver, delivery_id)
        assert again.delivery_id == delivery_id
        assert again.status == dpb.SUCCEEDED
        assert again.attempts[-1].response_status == 200
        await wait_for_delivery(receiver, delivery_id, count=2)

        succeeded = await asyncio.to_thread(
            lambda: list(client.deliveries(webhook_id=webhook.webhook_id, status="succeeded"))
        )
        assert [d.delivery_id for d in succeeded] == [delivery_id]
        failed = await asyncio.to_thread(
            lambda: list(client.deliveries(webhook_id=webhook.webhook_id, status=dpb.FAILED))
        )
        assert failed == []


def test_publish_idempotency_key(delivery_server: ServerProcess) -> None:
    with WebhooksClient(delivery_server.grpc_address) as client:
        key = unique("key")
        data = {"name": "m", "tags": {}, "description": None}
        first = client.publish("registered_model.created", data, idempotency_key=key)
        second = client.publish("registered_model.created", data, idempotency_key=key)
        assert second == first


def test_delivery_errors(delivery_server: ServerProcess) -> None:
    with WebhooksClient(delivery_server.grpc_address) as client:
        with pytest.raises(WebhooksError) as e:
            client.publish("model_version.created", {"name": 1})
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(WebhooksError) as e:
            client.publish("registered_model.deleted", {"name": "m"})
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        missing = str(uuid.uuid4())
        for call in (client.delivery, client.redeliver):
            with pytest.raises(WebhooksError) as e:
                call(missing)
            assert e.value.code == grpc.StatusCode.NOT_FOUND


# Tokens and TLS

TOKEN = "client-test-token"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, bytes]]:
    """A server that wants a bearer token and speaks TLS; with its CA certificate."""
    workdir = tmp_path_factory.mktemp("client-secured")
    ca, cert, key = make_certificates(workdir)
    proc = run_server(
        workdir,
        *PERMISSIVE,
        "--auth-token",
        TOKEN,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
    )
    yield proc, ca.read_bytes()
    proc.stop()


def test_token_and_tls(secured: tuple[ServerProcess, bytes]) -> None:
    server, ca = secured
    with WebhooksClient(server.grpc_address, token=TOKEN, root_certificates=ca) as client:
        webhook = client.create(unique("secured"), "http://127.0.0.1:9/x", ["prompt.created"])
        assert client.get(webhook.webhook_id) == webhook
        assert webhook in list(client.iter_webhooks())
        assert client.publish("prompt.created", {"name": "p", "tags": {}, "description": None})


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_missing_or_wrong_token_is_unauthenticated(
    secured: tuple[ServerProcess, bytes], token: str | None
) -> None:
    server, ca = secured
    with WebhooksClient(server.grpc_address, token=token, root_certificates=ca) as client:
        for call in (lambda: client.list_page(), lambda: client.delivery("x")):
            with pytest.raises(WebhooksError) as e:
                call()
            assert e.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_client_fails_cleanly_against_tls(secured: tuple[ServerProcess, bytes]) -> None:
    server, _ = secured
    client = WebhooksClient(server.grpc_address, token=TOKEN, timeout=5)
    with client, pytest.raises(WebhooksError) as e:
        client.list_page()
    assert e.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
