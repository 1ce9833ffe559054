"""Section 7: scale-out. gRPC, REST and delivery throughput with `--workers 2` against
`--workers 1` on this 2-core machine, and on PostgreSQL against SQLite, all in one run."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.fernet import Fernet

from bench import load
from bench.common import Context, start_server
from bench.delivery import checked, reset, subscribe, wait_arrivals
from bench.machine import median
from bench.procs import Child
from bench.report import Row
from bench.unary import seed

SCALE = "7. Scale-out"
POSTGRES = os.environ.get(
    "WEBHOOKS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
CHANNELS = 8  # gRPC keeps a channel on one worker: the load opens several so both get some


@dataclass(frozen=True)
class Figures:
    grpc_get: float
    rest_get: float
    deliveries: float


def grpc_get_spread(
    address: str, ids: list[str], concurrency: int, warmup: float, duration: float
) -> load.Rate:
    """getWebhook at `concurrency` in flight over CHANNELS channels (runs in a pool process)."""
    import grpc

    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    async def run() -> load.Rate:
        channels = [grpc.aio.insecure_channel(address) for _ in range(CHANNELS)]
        stubs = [pb_grpc.WebhookServiceStub(c) for c in channels]
        try:

            async def call(i: int) -> None:
                request = pb.GetWebhook(webhook_id=ids[i % len(ids)])
                await stubs[i % CHANNELS].getWebhook(request, timeout=30)

            return await load._closed_loop(call, concurrency, warmup, duration)
        finally:
            for channel in channels:
                await channel.close()

    return asyncio.run(run())


@contextmanager
def postgres_schema() -> Iterator[tuple[str, dict[str, str]] | None]:
    """A fresh schema and the key PostgreSQL needs; None when no PostgreSQL answers."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.Error:
        yield None
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            yield url, {"WEBHOOKS_SECRET_KEY": Fernet.generate_key().decode()}
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """The server reads its secret key from the environment it inherits."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def measure(ctx: Context, name: str, *server_args: str) -> Figures:
    """One server configuration: each figure the median of the settings' runs."""
    s = ctx.settings
    workdir = ctx.subdir(name)
    receiver = Child.of("receiver", workdir)
    server = start_server(workdir, *server_args)
    grpc_rates: list[float] = []
    rest_rates: list[float] = []
    delivery_rates: list[float] = []
    try:
        ids = seed(server.grpc_address, s.seed_webhooks)
        subscribe(server.grpc_address, receiver.http_url + load.HOOK_PATH, s.delivery_webhooks)
        total = s.delivery_events * s.delivery_webhooks
        for _ in range(s.runs):
            rate = ctx.run(
                grpc_get_spread, server.grpc_address, ids, s.concurrency, s.warmup, s.seconds
            )
            grpc_rates.append(_ok(rate, "gRPC getWebhook").per_second)
            rest_rate = ctx.run(
                load.http_unary, server.http_url, "get", ids, s.concurrency, s.warmup, s.seconds
            )
            rest_rates.append(_ok(rest_rate, "REST GET").per_second)
            reset(receiver)
            burst = checked(
                ctx.run(
                    load.publish_burst,
                    server.grpc_address,
                    s.delivery_events,
                    s.publish_concurrency,
                ),
                "publishing",
            )
            stats = wait_arrivals(receiver, total)
            delivery_rates.append(total / (stats["last"] - burst.started))
    finally:
        server.stop()
        receiver.stop()
    return Figures(median(grpc_rates), median(rest_rates), median(delivery_rates))


def _ok(rate: load.Rate, what: str) -> load.Rate:
    if rate.errors:
        raise RuntimeError(f"{what}: {rate.errors} errors, first: {rate.first_error}")
    return rate


def _rows(ctx: Context, label: str, ours: Figures, base: Figures, base_name: str) -> None:
    for attribute, figure, unit in (
        ("grpc_get", "gRPC getWebhook", "calls/s"),
        ("rest_get", "REST GET one webhook", "req/s"),
        ("deliveries", "sustained deliveries", "deliveries/s"),
    ):
        ctx.add(
            Row(
                SCALE,
                f"{figure}, {label}",
                unit,
                [getattr(ours, attribute)],
                [getattr(base, attribute)],
                base_name,
            )
        )


def scale_out(ctx: Context) -> None:
    results: dict[str, Figures] = {
        "sqlite-1": measure(ctx, "sqlite-1"),
        "sqlite-2": measure(ctx, "sqlite-2", "--workers", "2"),
    }
    _rows(ctx, "SQLite, 2 workers vs 1", results["sqlite-2"], results["sqlite-1"], "1 worker")
    for workers in ("1", "2"):
        with postgres_schema() as postgres:  # a fresh schema for each configuration
            if postgres is None:
                ctx.note(SCALE, f"PostgreSQL at {POSTGRES} did not answer: its rows are missing.")
                return
            url, env = postgres
            with environment(env):
                results[f"pg-{workers}"] = measure(
                    ctx, f"pg-{workers}", "--database-url", url, "--workers", workers
                )
    _rows(ctx, "PostgreSQL, 2 workers vs 1", results["pg-2"], results["pg-1"], "1 worker")
    _rows(ctx, "PostgreSQL vs SQLite, 1 worker", results["pg-1"], results["sqlite-1"], "SQLite")
    _rows(ctx, "PostgreSQL vs SQLite, 2 workers", results["pg-2"], results["sqlite-2"], "SQLite")
    s = ctx.settings
    ctx.note(
        SCALE,
        f"Each configuration is a fresh server (PostgreSQL: a fresh schema on the local "
        f"PostgreSQL 127.0.0.1:5432) measured {s.runs} times: getWebhook at {s.concurrency} in "
        f"flight over {CHANNELS} gRPC channels from a load process (a channel stays on one "
        f"worker, so several spread the load), REST GET one webhook at {s.concurrency} in "
        f"flight over keep-alive connections, and {s.delivery_events} events to "
        f"{s.delivery_webhooks} webhooks as in section 3 (a). The ceiling column is the "
        "configuration compared with; the ratio is the speed-up.",
    )
    ctx.note(
        SCALE,
        "On 2 cores the load processes and the receiver share the CPU with the server's "
        "workers, so a second worker cannot double a figure here; the ratio shows how much of "
        "the second core the server can use. PostgreSQL pays a network round trip per "
        "statement that SQLite, in-process, does not; it is the database for several replicas, "
        "not for speed on one machine.",
    )
