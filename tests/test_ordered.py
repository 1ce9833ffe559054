"""Ordered delivery end to end: a real server process, real receivers, a real restart.

An ordered webhook's deliveries go one at a time in publish order; one that fails holds the
ones after it until it succeeds or fails for good. The replicas on PostgreSQL are in
tests/test_scale_out.py."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from tests.databases import fresh
from tests.support import PERMISSIVE, Receiver, ServerProcess, Turns, own_server, run_server

ALIAS_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION_ALIAS, action=pb.CREATED)
VERSIONS = [str(v) for v in range(1, 11)]


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


async def ordered_webhook(server: ServerProcess, url: str) -> str:
    """A webhook on `url` for alias moves, made ordered."""
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        request = pb.CreateWebhook(name="champion-moves", url=url, events=[ALIAS_CREATED])
        hook = (await pb_grpc.WebhookServiceStub(channel).createWebhook(request)).webhook
        settings = dpb.SetWebhookSettings(
            webhook_id=hook.webhook_id, settings=dpb.WebhookSettings(ordered=True)
        )
        answer = await dpb_grpc.WebhookDeliveryServiceStub(channel).setWebhookSettings(settings)
    assert answer.settings == dpb.WebhookSettings(ordered=True)
    return hook.webhook_id


async def publish_moves(servers: list[ServerProcess], versions: list[str]) -> list[str]:
    """`champion` moved to each version in turn, one publish answered before the next, over
    the servers in turn; the delivery ids, in publish order."""
    channels = [grpc.aio.insecure_channel(s.grpc_address) for s in servers]
    try:
        ids = []
        for i, version in enumerate(versions):
            stub = dpb_grpc.WebhookDeliveryServiceStub(channels[i % len(channels)])
            request = dpb.PublishEvent(event=ALIAS_CREATED)
            request.data.update({"name": "churn", "alias": "champion", "version": version})
            [delivery_id] = (await stub.publishEvent(request)).delivery_ids
            ids.append(delivery_id)
        return ids
    finally:
        for channel in channels:
            await channel.close()


async def deliveries(server: ServerProcess, ids: list[str]) -> list[dpb.Delivery]:
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = dpb_grpc.WebhookDeliveryServiceStub(channel)
        return [(await stub.getDelivery(dpb.GetDelivery(delivery_id=d))).delivery for d in ids]


def in_turn(turns: Turns) -> None:
    """Each version taken once, in publish order, and nothing sent before the version
    ahead of it was taken."""
    assert turns.taken == VERSIONS
    assert turns.arrived == sorted(turns.arrived, key=int)


async def test_the_second_failing_twice_holds_the_rest_then_all_arrive_in_order(
    tmp_path: Path, rx: Receiver
) -> None:
    server = own_server(tmp_path, "--retry-schedule", "0.2,0.2,0.2", "--delivery-timeout", "2")
    try:
        rx.script = turns = Turns(fail={"2": 2})
        await ordered_webhook(server, f"{rx.url}/script")
        ids = await publish_moves([server], VERSIONS)
        await turns.wait(lambda: len(turns.taken) == len(VERSIONS))
        in_turn(turns)
        assert turns.arrived == ["1", "2", "2", "2", *VERSIONS[2:]]
        assert turns.most_in_hand == 1
        logged = await deliveries(server, ids)
        assert [d.status for d in logged] == [dpb.SUCCEEDED] * len(VERSIONS)
        assert [d.attempt_count for d in logged] == [1, 3, *[1] * 8]
    finally:
        assert server.stop() == 0


async def test_a_kill_9_mid_sequence_keeps_the_order(tmp_path: Path, rx: Receiver) -> None:
    """The server is killed while the receiver holds the 5th delivery unanswered, and
    restarted on the same SQLite file: the 5th goes again once its lease expires, and only
    then the 6th to the 10th."""
    database = f"sqlite:///{tmp_path}/webhooks.db"
    args = (*PERMISSIVE, "--retry-schedule", "0.2,0.2,0.2", "--delivery-timeout", "3")
    args += ("--database-url", database)
    server = run_server(tmp_path, *args)
    rx.script = turns = Turns(fail={"2": 2}, hold={"5"})
    try:
        await ordered_webhook(server, f"{rx.url}/script")
        ids = await publish_moves([server], VERSIONS)
        await turns.wait(lambda: "5" in turns.arrived)
        # Waiting their turn: PENDING, with no next attempt, while the 5th is out.
        waiting = await deliveries(server, ids[5:])
        assert [d.status for d in waiting] == [dpb.PENDING] * 5
        assert not any(d.HasField("next_attempt_timestamp") for d in waiting)
    finally:
        server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        server.proc.wait(timeout=10)  # type: ignore[union-attr]
    restarted = run_server(tmp_path, *args)
    try:
        # The killed process's lease on the 5th expires after delivery timeout + 10 s.
        await turns.wait(lambda: len(turns.taken) == len(VERSIONS), timeout=60)
        in_turn(turns)
        assert turns.arrived == ["1", "2", "2", "2", "3", "4", "5", "5", *VERSIONS[5:]]
        logged = await deliveries(restarted, ids)
        assert [d.status for d in logged] == [dpb.SUCCEEDED] * len(VERSIONS)
    finally:
        turns.release.set()
        assert restarted.stop() == 0


async def test_turning_ordering_off_sends_the_waiting_ones_at_once(
    tmp_path: Path, rx: Receiver
) -> None:
    """Over REST this time: while the 1st is held at the receiver the others wait; with the
    setting turned off they all go without waiting for it."""
    server = own_server(tmp_path, "--delivery-timeout", "30")
    rx.script = turns = Turns(hold={"1"})
    try:
        webhook_id = await ordered_webhook(server, f"{rx.url}/script")
        ids = await publish_moves([server], VERSIONS[:4])
        await turns.wait(lambda: turns.arrived == ["1"])
        url = f"{server.http_url}/api/2.0/mlflow/webhooks/{webhook_id}/settings"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert await response.json() == {"settings": {"ordered": True}}
            async with http.post(url, json={"settings": {"ordered": False}}) as response:
                assert response.status == 200, await response.text()
                assert await response.json() == {"settings": {}}  # every part the default
        await turns.wait(lambda: sorted(turns.taken) == ["2", "3", "4"])
        turns.release.set()
        logged = await deliveries(server, ids[1:])
        assert [d.status for d in logged] == [dpb.SUCCEEDED] * 3
    finally:
        turns.release.set()
        assert server.stop() == 0


async def test_two_replicas_on_postgresql_both_publishing_keep_the_order(
    tmp_path: Path, rx: Receiver
) -> None:
    """Both replicas publish and both deliver; the order holds across them, a failure holds
    the rest, and under concurrent publishes the receiver never has two at once."""
    with fresh("postgresql", tmp_path) as database:
        args = (*PERMISSIVE, "--retry-schedule", "0.2,0.2,0.2", "--delivery-timeout", "2")
        args += ("--database-url", database.url)
        replicas = [run_server(tmp_path, *args, env=database.env) for _ in range(2)]
        try:
            rx.script = turns = Turns(fail={"2": 2})
            await ordered_webhook(replicas[0], f"{rx.url}/script")
            await publish_moves(replicas, VERSIONS)
            await turns.wait(lambda: len(turns.taken) == len(VERSIONS))
            in_turn(turns)
            assert turns.arrived == ["1", "2", "2", "2", *VERSIONS[2:]]

            # Forty more published at once through both: they go in the order their
            # publishes committed in, still one at a time, each once.
            rx.script = turns = Turns(delay=0.005)
            more = [str(v) for v in range(11, 51)]
            calls = (publish_moves([replicas[i % 2]], [v]) for i, v in enumerate(more))
            await asyncio.gather(*calls)
            await turns.wait(lambda: len(turns.taken) == len(more), timeout=60)
            assert sorted(turns.taken, key=int) == more
            assert turns.arrived == turns.taken
            assert turns.most_in_hand == 1
        finally:
            for replica in replicas:
                replica.kill()
