"""redeliver: one extra attempt, logged like any other, that never ends a retry schedule by
failing. A server whose first retry is an hour away, so the only attempts a test sees are the
first send and the redelivers it asks for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.server.delivery.dispatcher import after_redelivery
from mlflow_webhooks.server.delivery.sender import Attempt
from mlflow_webhooks.server.store import DeliveryStatus
from tests.support import Receiver, own_server
from tests.test_delivery import Api, make_api


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    workdir = tmp_path_factory.mktemp("redeliver")
    server = own_server(workdir, "--retry-schedule", "3600", "--delivery-timeout", "5")
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        yield make_api(server, channel)
    server.stop()


@pytest.fixture
async def rx(api: Api) -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await api.forget()
    await receiver.stop()


async def redeliver(api: Api, delivery_id: str) -> dpb.Delivery:
    response = await api.deliveries.redeliver(dpb.Redeliver(delivery_id=delivery_id))
    return response.delivery


async def with_attempts(api: Api, delivery_id: str, count: int) -> dpb.Delivery:
    """The delivery once its log holds `count` attempts (the worker writes its result a
    moment after the receiver answered)."""
    async with asyncio.timeout(30):
        while len((found := await api.delivery(delivery_id)).attempts) < count:
            await asyncio.sleep(0.05)
    return found


async def test_concurrent_redelivers_each_log_their_attempt(api: Api, rx: Receiver) -> None:
    await api.webhook(f"{rx.url}/ok")
    [delivery_id] = (await api.publish()).delivery_ids
    await api.settled(delivery_id)
    await asyncio.gather(*(redeliver(api, delivery_id) for _ in range(10)))
    found = await api.delivery(delivery_id)
    assert len(rx.delivery_ids()) == 11
    assert [a.number for a in found.attempts] == list(range(1, 12))
    assert found.status == dpb.SUCCEEDED


async def test_a_redeliver_racing_the_first_send_logs_both(api: Api, rx: Receiver) -> None:
    await api.webhook(f"{rx.url}/delay/1")
    [delivery_id] = (await api.publish()).delivery_ids
    await rx.wait_for(1)  # the worker's POST has arrived and waits on the receiver
    await redeliver(api, delivery_id)
    found = await with_attempts(api, delivery_id, 2)
    assert len(rx.delivery_ids()) == 2
    assert [a.number for a in found.attempts] == [1, 2]
    assert found.status == dpb.SUCCEEDED


async def test_a_failed_redeliver_keeps_a_pending_delivery_on_its_schedule(
    api: Api, rx: Receiver
) -> None:
    """/flaky/2 fails a delivery's first two attempts: the worker's first send, then the
    first redeliver, which leaves it PENDING with the retry it had; the second succeeds."""
    await api.webhook(f"{rx.url}/flaky/2")
    [delivery_id] = (await api.publish()).delivery_ids
    pending = await with_attempts(api, delivery_id, 1)
    assert pending.status == dpb.PENDING and pending.HasField("next_attempt_timestamp")
    again = await redeliver(api, delivery_id)
    assert again.status == dpb.PENDING
    assert again.next_attempt_timestamp == pending.next_attempt_timestamp
    assert [(a.number, a.response_status) for a in again.attempts] == [(1, 503), (2, 503)]
    done = await redeliver(api, delivery_id)
    assert done.status == dpb.SUCCEEDED and not done.HasField("next_attempt_timestamp")
    assert [a.response_status for a in done.attempts] == [503, 503, 200]


@pytest.mark.parametrize(
    ("status", "current", "after"),
    [
        (200, DeliveryStatus.PENDING, DeliveryStatus.SUCCEEDED),
        (200, DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED),
        (503, DeliveryStatus.PENDING, None),  # stays on its retry schedule
        (400, DeliveryStatus.PENDING, None),
        (None, DeliveryStatus.PENDING, None),  # a connection error
        (503, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED),
        (503, DeliveryStatus.FAILED, DeliveryStatus.FAILED),
        (503, DeliveryStatus.CANCELLED, DeliveryStatus.FAILED),
    ],
)
def test_after_redelivery_policy(
    status: int | None, current: DeliveryStatus, after: DeliveryStatus | None
) -> None:
    attempt = Attempt(sent_at_ms=0, duration_ms=1, status=status)
    assert after_redelivery(attempt)(current) == after
