"""Group commit: the policy in-process, then its promises end to end on both databases with
many concurrent publishers: every acknowledged event is stored once with its deliveries,
idempotency keys hold inside one batch, and a kill -9 mid-burst loses nothing acknowledged."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from mlflow_webhooks.server.errors import InvalidArgument, Unavailable
from mlflow_webhooks.server.group_commit import GroupCommit
from tests.databases import KINDS, POSTGRES, Database, fresh
from tests.support import PERMISSIVE, Receiver, ServerProcess, run_server

# -- the policy ------------------------------------------------------------------------------


class Recorder:
    """A write that records its batches and waits for `release` before answering, so a
    test decides when a transaction ends."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.fail_next = False

    async def write(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        self.started.set()
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise Unavailable("the database is not answering")
        return [InvalidArgument(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_callers_queued_during_a_write_share_the_next_one() -> None:
    recorder = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(recorder.write, max_items=3, max_wait=0)
    first = asyncio.create_task(commit.submit(0))
    await recorder.started.wait()
    # While the first write runs, seven callers queue: they go three at a time.
    rest = [asyncio.create_task(commit.submit(i)) for i in range(2, 16, 2)]
    await asyncio.sleep(0)
    assert not first.done()  # answered only once its write has returned
    recorder.release.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [i * 10 for i in range(2, 16, 2)]
    assert recorder.batches == [[0], [2, 4, 6], [8, 10, 12], [14]]


async def test_one_items_failure_is_its_own_and_a_failed_write_fails_only_its_batch() -> None:
    recorder = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(recorder.write, max_wait=0)
    recorder.release.set()
    results = await asyncio.gather(*(commit.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], InvalidArgument) and results[1].message == "odd 1"
    assert isinstance(results[3], InvalidArgument)

    recorder.release.clear()
    recorder.started.clear()
    doomed = [asyncio.create_task(commit.submit(i)) for i in (100, 102)]
    await recorder.started.wait()
    recorder.fail_next = True
    later = asyncio.create_task(commit.submit(104))  # queued behind the failing write
    recorder.release.set()
    failures = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(f, Unavailable) for f in failures)
    assert failures[0] is not failures[1]  # each caller raises its own
    assert await later == 1040


async def test_a_caller_that_went_away_before_its_write_is_left_out() -> None:
    recorder = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(recorder.write, max_wait=0)
    first = asyncio.create_task(commit.submit(0))
    await recorder.started.wait()
    gone = asyncio.create_task(commit.submit(2))
    kept = asyncio.create_task(commit.submit(4))
    await asyncio.sleep(0)
    gone.cancel()
    recorder.release.set()
    assert await first == 0 and await kept == 40
    assert gone.cancelled()
    assert recorder.batches == [[0], [4]]


async def test_under_concurrency_the_writer_waits_a_bounded_moment_for_more() -> None:
    recorder = Recorder()
    recorder.release.set()
    commit: GroupCommit[int, int] = GroupCommit(recorder.write, max_items=4, max_wait=30.0)
    # A lone caller never waits: nothing suggests company.
    assert await commit.submit(0) == 0
    await asyncio.gather(commit.submit(2), commit.submit(4))
    # The last batch had company, so the next waits for more, but only until it is full.
    assert await asyncio.gather(*(commit.submit(i) for i in (6, 8, 10, 12))) == [60, 80, 100, 120]
    assert recorder.batches[-1] == [6, 8, 10, 12]


# -- end to end ------------------------------------------------------------------------------

EVENT = pb.WebhookEvent(entity=pb.MODEL_VERSION_TAG, action=pb.SET)
DATA = {"name": "churn", "version": "3", "key": "stage", "value": "prod"}
PUBLISHERS = 32


def request(key: str = "") -> dpb.PublishEvent:
    message = dpb.PublishEvent(event=EVENT, idempotency_key=key)
    message.data.update(DATA)
    return message


def stored(database: Database) -> tuple[set[str], Counter[str]]:
    """The events in the database, and how many deliveries each has."""
    events_sql = "SELECT id FROM events"
    deliveries_sql = "SELECT event_id FROM deliveries"
    if database.kind == "sqlite":
        with sqlite3.connect(database.url.removeprefix("sqlite:///"), timeout=30) as conn:
            events = {row[0] for row in conn.execute(events_sql)}
            deliveries = Counter(row[0] for row in conn.execute(deliveries_sql))
        return events, deliveries
    import psycopg

    schema = database.url.rsplit("%3D", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        events = {row[0] for row in conn.execute(events_sql)}
        deliveries = Counter(row[0] for row in conn.execute(deliveries_sql))
    return events, deliveries


def start(workdir: Path, database: Database) -> ServerProcess:
    args = (*PERMISSIVE, "--delivery-timeout", "2", "--database-url", database.url)
    return run_server(workdir, *args, env=database.env)


async def subscribe(server: ServerProcess, url: str, count: int) -> None:
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.WebhookServiceStub(channel)
        for _ in range(count):
            await stub.createWebhook(pb.CreateWebhook(name="hook", url=url, events=[EVENT]))


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_publishers_each_event_stored_once_with_its_deliveries(
    tmp_path: Path, kind: str
) -> None:
    receiver = await Receiver().start()
    with fresh(kind, tmp_path) as database:
        server = start(tmp_path, database)
        try:
            await subscribe(server, f"{receiver.url}/ok", 2)
            async with grpc.aio.insecure_channel(server.grpc_address) as channel:
                stub = dpb_grpc.WebhookDeliveryServiceStub(channel)

                async def publisher(n: int) -> list[tuple[str, dpb.PublishEvent.Response]]:
                    answers = []
                    for i in range(10):
                        # Every publisher repeats a few shared keys, so batches hold the same
                        # key more than once.
                        key = f"shared-{i % 3}" if i % 2 else ""
                        answers.append((key, await stub.publishEvent(request(key))))
                    return answers

                runs = await asyncio.gather(*(publisher(n) for n in range(PUBLISHERS)))
            answers = [answer for run in runs for answer in run]
            by_key: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
            for key, answer in answers:
                if key:
                    by_key.setdefault(key, set()).add((answer.event_id, tuple(answer.delivery_ids)))
            # Each key answered one event, the same ids every time.
            assert {key: len(found) for key, found in by_key.items()} == {
                f"shared-{i}": 1 for i in range(3)
            }
            acknowledged = {answer.event_id: list(answer.delivery_ids) for _, answer in answers}
            assert len(acknowledged) == PUBLISHERS * 5 + 3
            events, deliveries = stored(database)
            assert events == set(acknowledged)
            assert all(len(ids) == 2 for ids in acknowledged.values())
            assert deliveries == Counter({event_id: 2 for event_id in acknowledged})
            every = {d for ids in acknowledged.values() for d in ids}
            async with receiver.arrived:
                await asyncio.wait_for(
                    receiver.arrived.wait_for(lambda: set(receiver.delivery_ids()) >= every), 60
                )
        finally:
            assert server.stop() == 0
            await receiver.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_kill_9_mid_burst_loses_nothing_acknowledged(tmp_path: Path, kind: str) -> None:
    receiver = await Receiver().start()
    with fresh(kind, tmp_path) as database:
        server = start(tmp_path, database)
        acknowledged: dict[str, list[str]] = {}
        try:
            await subscribe(server, f"{receiver.url}/ok", 1)
            async with grpc.aio.insecure_channel(server.grpc_address) as channel:
                stub = dpb_grpc.WebhookDeliveryServiceStub(channel)
                enough = asyncio.Event()

                async def publisher() -> None:
                    while True:
                        try:
                            answer = await stub.publishEvent(request(), timeout=10)
                        except grpc.aio.AioRpcError:
                            return  # the server died under this call: not acknowledged
                        acknowledged[answer.event_id] = list(answer.delivery_ids)
                        if len(acknowledged) >= 300:
                            enough.set()

                tasks = [asyncio.create_task(publisher()) for _ in range(PUBLISHERS)]
                await asyncio.wait_for(enough.wait(), 60)
                # Killed with publishes queued and in flight.
                server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
                server.proc.wait(timeout=10)  # type: ignore[union-attr]
                await asyncio.wait_for(asyncio.gather(*tasks), 30)
            events, deliveries = stored(database)
            assert set(acknowledged) <= events
            assert all(deliveries[event_id] == 1 for event_id in acknowledged)
            restarted = start(tmp_path, database)
            try:
                wanted = {d for ids in acknowledged.values() for d in ids}
                async with receiver.arrived:
                    await asyncio.wait_for(
                        receiver.arrived.wait_for(lambda: set(receiver.delivery_ids()) >= wanted),
                        90,
                    )
            finally:
                assert restarted.stop() == 0
        finally:
            server.kill()
            await receiver.stop()
