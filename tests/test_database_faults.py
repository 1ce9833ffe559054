"""The database misbehaving under a real server: connections dropped mid-write, a table locked
past --db-timeout, SQLite's write lock held by another process. Nothing is sent twice, no call
waits past the timeout, reads keep answering, and health tells the truth."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from tests.databases import POSTGRES, Database, fresh
from tests.support import (
    EVENT_JSON,
    PERMISSIVE,
    Receiver,
    ServerProcess,
    own_server,
    run_server,
)

MV_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LAST_ANSWER = "webhooks_database_last_answer_timestamp_seconds"
# Generous bounds for a loaded machine: what is asserted is the answer, not its speed.
ANSWER = 20.0


@contextmanager
def postgres_server(workdir: Path, *args: str) -> Iterator[tuple[ServerProcess, str]]:
    """A server on a fresh PostgreSQL schema whose connections carry the schema's name as
    their application_name, so a test can find them (and only them) in pg_stat_activity:
    other tests use the same database at the same time."""
    with fresh("postgresql", workdir) as database:
        schema = database.url.rsplit("%3D", 1)[1]
        url = f"{database.url}&application_name={schema}"
        server = run_server(workdir, *PERMISSIVE, "--database-url", url, *args, env=database.env)
        server.database = Database(database.kind, url, database.env)
        try:
            yield server, schema
        finally:
            server.stop()


@asynccontextmanager
async def channel_to(server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        yield channel


async def eventually(check: Callable[[], object], what: str, timeout: float = ANSWER) -> None:
    """Polls `check` (async) until it returns true: for state only the database can show."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():  # type: ignore[misc]
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not seen within {timeout:g} s: {what}") from None


async def health_becomes(watch: grpc.aio.UnaryStreamCall, status: int) -> None:
    async with asyncio.timeout(ANSWER):
        while (await watch.read()).status != status:
            pass


async def probe_has_answered(http: aiohttp.ClientSession, server: ServerProcess) -> None:
    """Until the background probe's first answer, /metrics has no time of the last one: the
    health service says SERVING from start-up, before that answer."""
    async with asyncio.timeout(ANSWER):
        while True:
            async with http.get(f"{server.http_url}/metrics") as r:
                if LAST_ANSWER in await r.text():
                    return
            await asyncio.sleep(0.05)


def attempt_lines(server: ServerProcess) -> Counter[str]:
    """How many attempts the server logged, by delivery id."""
    return Counter(re.findall(r"delivery attempt delivery_id=(\S+)", server.log()))


async def test_connections_dropped_while_results_are_written(tmp_path: Path) -> None:
    """The results of four sends are being written when every connection of the service is
    terminated: the write is made again on fresh connections, and nothing is sent twice."""
    with postgres_server(tmp_path, "--delivery-timeout", "5", "--db-timeout", "30") as (
        server,
        app,
    ):
        receiver = await Receiver().start()
        try:
            async with channel_to(server) as channel:
                hooks = pb_grpc.WebhookServiceStub(channel)
                deliveries = dpb_grpc.WebhookDeliveryServiceStub(channel)
                await hooks.createWebhook(
                    pb.CreateWebhook(name="held", url=f"{receiver.url}/hold", events=[MV_CREATED])
                )
                ids = []
                for _ in range(4):  # a new webhook's window: all go out at once
                    request = dpb.PublishEvent(event=MV_CREATED)
                    request.data.update(EVENT_JSON["data"])
                    ids += (await deliveries.publishEvent(request)).delivery_ids
                # Claimed and sent: the receiver holds all four answers.
                await receiver.wait_for(4)
                async with (
                    await psycopg.AsyncConnection.connect(POSTGRES) as blocker,
                    # pg_stat_activity is read outside the blocker's transaction, which would
                    # see one snapshot of it.
                    await psycopg.AsyncConnection.connect(POSTGRES, autocommit=True) as observer,
                ):
                    # The results' write waits on this lock, so the connections are dropped
                    # exactly while it is under way.
                    await blocker.execute(
                        f"LOCK TABLE {app}.delivery_attempts IN ACCESS EXCLUSIVE MODE"
                    )
                    receiver.gate.set()

                    async def writing() -> bool:
                        cursor = await observer.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                            "AND wait_event_type = 'Lock' AND query LIKE '%%delivery_attempts%%' "
                            # Not the health probe, which waits on the same lock.
                            "AND query NOT LIKE 'LOCK TABLE%%'",
                            (app,),
                        )
                        return (await cursor.fetchone())[0] > 0

                    await eventually(writing, "the results' write waiting on the lock")
                    await observer.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s",
                        (app,),
                    )
                    await blocker.rollback()

                async def settled() -> bool:
                    found = [
                        (await deliveries.getDelivery(dpb.GetDelivery(delivery_id=i))).delivery
                        for i in ids
                    ]
                    return all(d.status == dpb.SUCCEEDED for d in found)

                await eventually(settled, "every delivery SUCCEEDED")
                for delivery_id in ids:
                    found = await deliveries.getDelivery(dpb.GetDelivery(delivery_id=delivery_id))
                    assert [a.number for a in found.delivery.attempts] == [1]
        finally:
            await receiver.stop()
        assert sorted(receiver.delivery_ids()) == sorted(ids)
        assert attempt_lines(server) == Counter(ids)
        assert "delivery results and claiming failed" in server.log()


async def test_locked_outbox_on_postgresql(tmp_path: Path) -> None:
    """The deliveries table locked past --db-timeout: publishes answer 503 instead of waiting,
    getWebhook keeps answering, and health is NOT_SERVING until the lock ends."""
    with postgres_server(tmp_path, "--db-timeout", "2") as (server, app):
        async with channel_to(server) as channel, aiohttp.ClientSession() as http:
            hooks = pb_grpc.WebhookServiceStub(channel)
            hook = (
                await hooks.createWebhook(
                    pb.CreateWebhook(name="locked", url="http://127.0.0.1:9/", events=[MV_CREATED])
                )
            ).webhook
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="mlflow.WebhookService")
            )
            await health_becomes(watch, SERVING)
            await probe_has_answered(http, server)
            publish_url = f"{server.http_url}/api/2.0/mlflow/webhook-events"
            timeout = aiohttp.ClientTimeout(total=ANSWER)
            async with await psycopg.AsyncConnection.connect(POSTGRES) as blocker:
                await blocker.execute(f"LOCK TABLE {app}.deliveries IN ACCESS EXCLUSIVE MODE")
                answers = await asyncio.gather(
                    *(http.post(publish_url, json=EVENT_JSON, timeout=timeout) for _ in range(6))
                )
                for answer in answers:
                    assert answer.status == 503, await answer.text()
                    assert (await answer.json())["error_code"] == "TEMPORARILY_UNAVAILABLE"
                got = await hooks.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id), timeout=5)
                assert got.webhook.name == "locked"
                await health_becomes(watch, NOT_SERVING)
                async with http.get(f"{server.http_url}/health") as r:
                    assert r.status == 503
                    assert await r.json() == {"status": "database unavailable"}
                async with http.get(f"{server.http_url}/metrics") as r:
                    assert LAST_ANSWER in await r.text()
                await blocker.rollback()
            await health_becomes(watch, SERVING)
            async with http.get(f"{server.http_url}/health") as r:
                assert r.status == 200
            async with http.post(publish_url, json=EVENT_JSON, timeout=timeout) as r:
                assert r.status == 200, await r.text()
            watch.cancel()
    assert "Traceback" not in server.log()


async def test_sqlite_write_lock_held_by_another_process(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past --db-timeout: writes answer UNAVAILABLE
    promptly, reads answer, and health is NOT_SERVING until the lock is released."""
    server = own_server(tmp_path, "--db-timeout", "1")
    try:
        async with channel_to(server) as channel, aiohttp.ClientSession() as http:
            hooks = pb_grpc.WebhookServiceStub(channel)
            hook = (
                await hooks.createWebhook(
                    pb.CreateWebhook(name="kept", url="http://127.0.0.1:9/", events=[MV_CREATED])
                )
            ).webhook
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            await health_becomes(watch, SERVING)
            holder = sqlite3.connect(tmp_path / "webhooks.db", timeout=30, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")
                # More writers than the server has write threads, all at once: none may hold
                # up the reads below.
                creates = [
                    hooks.createWebhook(
                        pb.CreateWebhook(
                            name="late", url="http://127.0.0.1:9/", events=[MV_CREATED]
                        ),
                        timeout=ANSWER,
                    )
                    for _ in range(8)
                ]
                for outcome in await asyncio.gather(*creates, return_exceptions=True):
                    assert isinstance(outcome, grpc.aio.AioRpcError), outcome
                    assert outcome.code() == grpc.StatusCode.UNAVAILABLE
                    assert "retry" in (outcome.details() or "")
                publish_url = f"{server.http_url}/api/2.0/mlflow/webhook-events"
                timeout = aiohttp.ClientTimeout(total=ANSWER)
                async with http.post(publish_url, json=EVENT_JSON, timeout=timeout) as r:
                    assert r.status == 503
                    assert (await r.json())["error_code"] == "TEMPORARILY_UNAVAILABLE"
                url = f"{server.http_url}/api/2.0/mlflow/webhooks/{hook.webhook_id}"
                async with http.get(url, timeout=timeout) as r:
                    assert r.status == 200
                    assert (await r.json())["webhook"]["name"] == "kept"
                async with http.get(f"{server.http_url}/api/2.0/mlflow/webhooks") as r:
                    assert r.status == 200
                await health_becomes(watch, NOT_SERVING)
                async with http.get(f"{server.http_url}/health") as r:
                    assert r.status == 503
            finally:
                holder.rollback()
                holder.close()
            await health_becomes(watch, SERVING)
            created = await hooks.createWebhook(
                pb.CreateWebhook(name="after", url="http://127.0.0.1:9/", events=[MV_CREATED])
            )
            assert created.webhook.name == "after"
            watch.cancel()
    finally:
        server.stop()
    assert "Traceback" not in server.log()
