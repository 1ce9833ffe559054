"""Sections 4 and 5: list pages deep into 100,000 webhooks, and the server's memory idle and
with that many webhooks."""

from __future__ import annotations

import time
import uuid

from bench import load
from bench.common import Context, start_server, wait_idle
from bench.machine import rss_samples
from bench.report import Row, Target

LIST = "4. List scaling"
MEMORY = "5. Memory"
PAGE = 100


def build_webhooks(database: str, count: int) -> float:
    """Writes `count` webhooks straight into the SQLite file through the server's store
    models, in one transaction, before the server starts; the seconds it took."""
    import peewee as pw

    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.server.store import Store, now_ms
    from mlflow_webhooks.server.store import models as m

    started = time.perf_counter()
    store = Store(f"sqlite:///{database}", None)
    store.open()
    base = now_ms() - count
    with store.db.atomic():
        for chunk in pw.chunked(range(count), 1000):
            hooks = [
                {
                    "id": str(uuid.uuid4()),
                    "name": f"hook-{i}",
                    "url": load.CREATE_URL,
                    "description": "a webhook of the size the bench creates",
                    "secret_token": None,
                    "status": pb.ACTIVE,
                    "creation_timestamp": base + i,
                    "last_updated_timestamp": base + i,
                }
                for i in chunk
            ]
            m.Webhook.insert_many(hooks).execute()
            m.Subscription.insert_many(
                [
                    {
                        "webhook": hook["id"],
                        "entity": pb.MODEL_VERSION,
                        "action": pb.CREATED,
                        "position": 0,
                    }
                    for hook in hooks
                ]
            ).execute()
    store.close()
    return time.perf_counter() - started


def list_pages(address: str, deep_page: int, repeats: int) -> tuple[list[float], list[float]]:
    """Walks the page tokens to page `deep_page`, then times page 1 and that page, in turns,
    `repeats` times each; their latencies in ms."""
    import grpc

    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.WebhookServiceStub(channel)
        token = ""
        for page in range(1, deep_page):
            token = stub.listWebhooks(
                pb.ListWebhooks(max_results=PAGE, page_token=token)
            ).next_page_token
            if not token:
                raise RuntimeError(f"page {page} was the last; {deep_page} pages were expected")
        first = pb.ListWebhooks(max_results=PAGE)
        deep = pb.ListWebhooks(max_results=PAGE, page_token=token)
        stub.listWebhooks(first)
        stub.listWebhooks(deep)
        first_ms: list[float] = []
        deep_ms: list[float] = []
        for _ in range(repeats):
            for request, into in ((first, first_ms), (deep, deep_ms)):
                started = time.perf_counter()
                response = stub.listWebhooks(request)
                into.append((time.perf_counter() - started) * 1000)
                if len(response.webhooks) != PAGE:
                    raise RuntimeError(f"a page held {len(response.webhooks)} webhooks")
    return first_ms, deep_ms


def list_scaling(ctx: Context) -> None:
    s = ctx.settings
    workdir = ctx.subdir("list")
    database = workdir / "webhooks.db"
    built = ctx.run(build_webhooks, str(database), s.list_webhooks)
    server = start_server(workdir, database=database)
    try:
        first_ms, deep_ms = ctx.run(list_pages, server.grpc_address, s.deep_page, s.page_repeats)
        wait_idle(server.pid, 10.0)
        samples = rss_samples(server.pid)
    finally:
        server.stop()
    ctx.add(
        Row(
            LIST,
            f"listWebhooks page {s.deep_page} of {PAGE} ({s.list_webhooks:,} webhooks)",
            "ms",
            deep_ms,
            first_ms,
            "page 1",
            Target("ratio<=", 2.0, "<= 2x page 1"),
        )
    )
    ctx.add(
        Row(
            MEMORY,
            f"RSS with {s.list_webhooks:,} webhooks",
            "MB",
            samples,
            [ctx.reference_rss()],
            "no-op gRPC server",
        )
    )
    ctx.note(
        LIST,
        f"{s.list_webhooks:,} webhooks written through server.store's models into the SQLite "
        f"file before the server starts ({built:.1f} s). A load process walks the "
        f"next_page_token chain to page {s.deep_page}, then calls page 1 and page "
        f"{s.deep_page} in turns, {s.page_repeats} times each, one call at a time over gRPC; "
        f"figure: the median latency of page {s.deep_page}; ceiling: page 1's.",
    )
    ctx.note(
        MEMORY,
        f"With {s.list_webhooks:,} webhooks: VmRSS after the list scenario's calls, 3 samples.",
    )


def memory_idle(ctx: Context) -> None:
    workdir = ctx.subdir("idle")
    server = start_server(workdir)
    try:
        wait_idle(server.pid, 10.0)
        samples = rss_samples(server.pid)
    finally:
        server.stop()
    ctx.add(Row(MEMORY, "RSS idle", "MB", samples, [ctx.reference_rss()], "no-op gRPC server"))
    ctx.note(
        MEMORY,
        "VmRSS of /proc/PID/status, 3 samples once the server is idle. Reference (in the "
        "ceiling column): the no-op grpc.aio WebhookService server of section 1, idle: what a "
        "Python process serving the generated service costs before any of our code. Idle: a "
        "fresh server on an empty SQLite file.",
    )
