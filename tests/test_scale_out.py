"""Scale-out: replicas on one PostgreSQL, and --workers N on one machine."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from tests.conftest import PERMISSIVE
from tests.databases import KINDS, Database, fresh
from tests.support import Receiver, ServerProcess, run_server

EVENT = pb.WebhookEvent(entity=pb.MODEL_VERSION_ALIAS, action=pb.DELETED)
DATA = {"name": "churn", "alias": "champion"}


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


def publish_request() -> dpb.PublishEvent:
    request = dpb.PublishEvent(event=EVENT)
    request.data.update(DATA)
    return request


async def publish_round_robin(servers: list[ServerProcess], count: int) -> list[str]:
    """Publishes `count` events spread over the servers, 32 at a time."""
    # A local subchannel pool gives each channel a connection of its own (grpc otherwise
    # shares one per target), so --workers sees them spread by the kernel.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(s.grpc_address, options=options) for s in servers]
    stubs = itertools.cycle([dpb_grpc.WebhookDeliveryServiceStub(c) for c in channels])
    ids: list[str] = []
    try:
        for start in range(0, count, 32):
            calls = [
                next(stubs).publishEvent(publish_request()) for _ in range(min(32, count - start))
            ]
            ids += [d for response in await asyncio.gather(*calls) for d in response.delivery_ids]
    finally:
        for channel in channels:
            await channel.close()
    return ids


async def create_webhook(server: ServerProcess, url: str) -> None:
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        request = pb.CreateWebhook(name="replicated", url=url, events=[EVENT])
        await pb_grpc.WebhookServiceStub(channel).createWebhook(request)


async def arrived(rx: Receiver, wanted: set[str], timeout: float) -> None:
    async with rx.arrived:
        await asyncio.wait_for(
            rx.arrived.wait_for(lambda: set(rx.delivery_ids()) >= wanted), timeout
        )


def start_replicas(
    workdir: Path, database: Database, count: int, *extra: str
) -> list[ServerProcess]:
    args = (*PERMISSIVE, "--database-url", database.url, *extra)
    return [run_server(workdir, *args, env=database.env) for _ in range(count)]


async def test_three_replicas_deliver_everything_once_then_survive_a_kill(
    tmp_path: Path, rx: Receiver
) -> None:
    with fresh("postgresql", tmp_path) as database:
        replicas = start_replicas(tmp_path, database, 3, "--delivery-timeout", "1")
        try:
            await create_webhook(replicas[0], f"{rx.url}/ok")
            published = await publish_round_robin(replicas, 2000)
            assert len(set(published)) == 2000
            await arrived(rx, set(published), timeout=120)
            # No process died, so no delivery went out twice.
            twice = [d for d, n in Counter(rx.delivery_ids()).items() if n > 1]
            assert twice == []

            # Now a backlog to a slower endpoint, and one replica killed in the middle of it.
            rx.received.clear()
            await create_webhook(replicas[0], f"{rx.url}/delay/0.01")
            backlog = await publish_round_robin(replicas, 600)
            await rx.wait_for(50)
            replicas[1].proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            replicas[1].proc.wait(timeout=10)  # type: ignore[union-attr]
            # The killed replica's leases expire after delivery timeout + 10 s.
            await arrived(rx, set(backlog), timeout=120)
        finally:
            for replica in replicas:
                replica.kill()


def listeners(port: str) -> set[int]:
    """PIDs listening on a TCP port, from ss."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def connected_to(port: int) -> set[int]:
    out = subprocess.run(
        ["ss", "-Htnp", f"dport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


@pytest.mark.parametrize("kind", KINDS)
async def test_workers_share_ports_serve_and_deliver(
    tmp_path: Path, rx: Receiver, kind: str
) -> None:
    with fresh(kind, tmp_path) as database:
        [server] = start_replicas(tmp_path, database, 1, "--workers", "2")
        try:
            assert server.proc is not None
            workers = children(server.proc.pid)
            assert len(workers) == 2
            grpc_port = server.grpc_address.rsplit(":", 1)[1]
            http_port = server.http_url.rsplit(":", 1)[1]
            assert listeners(grpc_port) == workers and listeners(http_port) == workers

            await create_webhook(server, f"{rx.url}/delay/0.02")
            # New connections are spread over the workers by the kernel; each gets calls.
            published = await publish_round_robin([server] * 16, 400)
            await arrived(rx, set(published), timeout=60)
            # Both workers' delivery pools hold keep-alive connections to the receiver.
            assert connected_to(int(rx.url.rsplit(":", 1)[1])) == workers

            # A worker that dies is replaced, and the service goes on.
            victim = next(iter(workers))
            subprocess.run(["kill", "-9", str(victim)], check=True)
            async with asyncio.timeout(30):
                while len(children(server.proc.pid) - {victim}) < 2:
                    await asyncio.sleep(0.1)
            more = await publish_round_robin([server] * 4, 20)
            await arrived(rx, set(more), timeout=60)
        finally:
            assert server.stop() == 0


async def test_a_dropped_database_connection_is_unavailable_then_recovers(tmp_path: Path) -> None:
    """PostgreSQL restarting under the server: calls that hit a dropped connection are
    UNAVAILABLE (retry), never INTERNAL, and the server recovers on its own."""
    import psycopg

    from tests.databases import POSTGRES

    with fresh("postgresql", tmp_path) as database:
        name = f"webhooks-{tmp_path.name}"[:60]
        url = f"{database.url}&application_name={name}"
        [server] = start_replicas(tmp_path, replace(database, url=url), 1)
        try:
            async with grpc.aio.insecure_channel(server.grpc_address) as channel:
                stub = pb_grpc.WebhookServiceStub(channel)
                request = pb.CreateWebhook(name="kept", url="https://example.com/h", events=[EVENT])
                hook = (await stub.createWebhook(request)).webhook
                with psycopg.connect(POSTGRES, autocommit=True) as admin:
                    killed = admin.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = %s",
                        (name,),
                    ).fetchone()[0]
                assert killed >= 1
                codes = []
                for _ in range(20):  # every pooled thread may meet its dropped connection once
                    try:
                        got = await stub.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id))
                    except grpc.aio.AioRpcError as e:
                        codes.append(e.code())
                        assert "retry" in e.details()
                        continue
                    assert got.webhook == hook
                    codes.append(grpc.StatusCode.OK)
                assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
                assert codes[-8:] == [grpc.StatusCode.OK] * 8
        finally:
            assert server.stop() == 0
