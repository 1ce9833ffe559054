"""Section 3: the delivery engine against a fast local receiver (its own process), beside a
bare aiohttp POST loop (its own process) against the same receiver."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import grpc

from bench import load
from bench.common import HEADLINE, Context, cpu_seconds, http_json, start_server, wait_idle
from bench.machine import free_port, median, percentile, rss_mb, rss_samples
from bench.procs import FORWARD_IN_FLIGHT, Child
from bench.report import Row, Target

DELIVERY = "3. Delivery"
MEMORY = "5. Memory"
ARRIVAL_TIMEOUT = 120.0


def subscribe(address: str, url: str, count: int) -> None:
    """`count` webhooks on `url`, subscribed to the event the bench publishes."""
    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    event = pb.WebhookEvent(
        entity=pb.WebhookEntity.Value(load.EVENT[0]), action=pb.WebhookAction.Value(load.EVENT[1])
    )
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.WebhookServiceStub(channel)
        for i in range(count):
            stub.createWebhook(
                pb.CreateWebhook(name=f"hook-{i}", url=url, events=[event], secret=f"secret-{i}")
            )


def wait_arrivals(receiver: Child, count: int, timeout: float = ARRIVAL_TIMEOUT) -> dict:
    """The receiver's counters once it has counted `count` POSTs."""
    deadline = time.perf_counter() + timeout
    while True:
        stats = http_json(receiver.http_url + "/stats")
        if stats["count"] >= count:
            return stats
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the receiver counted {stats['count']} of {count} POSTs")
        time.sleep(0.01)


def reset(receiver: Child) -> None:
    http_json(receiver.http_url + "/reset", "POST")


def checked(burst: load.Burst, what: str) -> load.Burst:
    if burst.errors:
        raise RuntimeError(f"{what}: {burst.errors} errors, first: {burst.first_error}")
    return burst


def pipeline(ctx: Context) -> None:
    """Events/s delivered end to end with ONE webhook, published over REST by concurrent
    callers, with 1 and 2 workers; and the publish latency those callers saw."""
    s = ctx.settings
    count, publishers = s.pipeline_events, s.pipeline_publishers
    ceiling: list[float] = []
    ceiling_p99: list[float] = []
    floor: list[float] = []
    floor_cpu_ms: list[float] = []
    for workers in ("1", "2"):
        workdir = ctx.subdir(f"pipeline-{workers}")
        receiver = Child.of("receiver", workdir)
        server = start_server(workdir, "--workers", workers)
        hook = receiver.http_url + load.HOOK_PATH
        if workers == "1":
            forwarder = Child.of("forwarder", workdir)
            http_json(f"{forwarder.http_url}/forward-to?url={hook}", "POST")
        ours: list[float] = []
        p99: list[float] = []
        cpu_ms: list[float] = []
        try:
            subscribe(server.grpc_address, hook, 1)
            for _ in range(s.runs):
                reset(receiver)
                cpu_before = cpu_seconds(server.pid, children=True)
                burst = checked(
                    ctx.run(load.publish_rest_burst, server.http_url, count, publishers),
                    "publishing over REST",
                )
                stats = wait_arrivals(receiver, count)
                ours.append(count / (stats["last"] - burst.started))
                p99.append(percentile(list(burst.latencies_ms), 99))
                cpu_ms.append((cpu_seconds(server.pid, children=True) - cpu_before) * 1000 / count)
                if workers == "1":
                    reset(receiver)
                    bare = checked(
                        ctx.run(load.post_burst, hook, count, s.concurrency), "bare loop"
                    )
                    stats = wait_arrivals(receiver, count)
                    ceiling.append(count / (stats["last"] - bare.started))
                    reset(receiver)
                    bare = checked(ctx.run(load.post_burst, hook, count, publishers), "bare loop")
                    ceiling_p99.append(percentile(list(bare.latencies_ms), 99))
                    rate, cpu = forwarded(ctx, forwarder, receiver, count, publishers)
                    floor.append(rate)
                    floor_cpu_ms.append(cpu)
        finally:
            server.stop()
            receiver.stop()
            if workers == "1":
                forwarder.stop()
        label = "1 worker" if workers == "1" else f"--workers {workers}"
        ctx.add(
            Row(
                HEADLINE,
                f"events/s delivered, ONE webhook, {publishers} REST publishers, {label}",
                "events/s",
                ours,
                ceiling,
                f"bare aiohttp POST loop, {s.concurrency} in flight",
                Target("ratio>=", 0.5, ">= 50% of ceiling"),
            )
        )
        ctx.add(
            Row(
                HEADLINE,
                f"REST publish p99, {publishers} concurrent publishers, {label}",
                "ms",
                p99,
                ceiling_p99,
                f"bare POST p99, {publishers} in flight",
                Target("<=", 20.0, "<= 20 ms"),
            )
        )
        ctx.note(
            HEADLINE,
            f"{label}: the server (all its processes) spent a median "
            f"{median(cpu_ms):.3f} ms of CPU per event, publishing and delivering.",
        )
    ctx.add(
        Row(
            HEADLINE,
            f"events/s through a bare aiohttp forwarder, {publishers} REST publishers (the floor)",
            "events/s",
            floor,
            ceiling,
            f"bare aiohttp POST loop, {s.concurrency} in flight",
        )
    )
    ctx.note(
        HEADLINE,
        "The floor: the same publishes to a process that only answers each and POSTs its body "
        f"on to the same receiver, {FORWARD_IN_FLIGHT} in flight (bench/procs.py's "
        "`forwarder`: nothing parsed, stored, signed, retried or logged), timed the same way. "
        "A service that answers publishes and sends deliveries through aiohttp does at least "
        "this much per event, so its ratio bounds what the pipeline's can reach here. The "
        f"forwarder spent a median {median(floor_cpu_ms):.3f} ms of CPU per event.",
    )
    ctx.note(
        HEADLINE,
        f"One signed webhook on the receiver; {count:,} events published through the JSON "
        f"shim (`POST /api/2.0/mlflow/webhook-events`) by {publishers} concurrent callers in a "
        "load process, each publishing again as soon as it is answered; the figure is events / "
        "(the receiver's last arrival - the first publish). Ceiling: as many POSTs of the same "
        f"body, {s.concurrency} in flight, from an aiohttp client process to the same receiver, "
        "timed the same way. Publish p99: the latency of every publish call the load process "
        f"saw; beside it the p99 of bare POSTs to the receiver at {publishers} in flight.",
    )


def forwarded(
    ctx: Context, forwarder: Child, receiver: Child, count: int, publishers: int
) -> tuple[float, float]:
    """Events/s through the bare forwarder, timed as the pipeline is, and its CPU ms per
    event."""
    reset(receiver)
    cpu_before = cpu_seconds(forwarder.pid)
    burst = checked(
        ctx.run(load.publish_rest_burst, forwarder.http_url, count, publishers), "forwarder"
    )
    rate = count / (wait_arrivals(receiver, count)["last"] - burst.started)
    return rate, (cpu_seconds(forwarder.pid) - cpu_before) * 1000 / count


def throughput(ctx: Context) -> None:
    """(a) deliveries per second for a batch of events to 16 webhooks."""
    s = ctx.settings
    workdir = ctx.subdir("throughput")
    receiver = Child.of("receiver", workdir)
    server = start_server(workdir)
    hook = receiver.http_url + load.HOOK_PATH
    total = s.delivery_events * s.delivery_webhooks
    ours: list[float] = []
    ceiling: list[float] = []
    publish_seconds: list[float] = []
    server_cpu_ms: list[float] = []
    bare_cpu_ms: list[float] = []
    try:
        subscribe(server.grpc_address, hook, s.delivery_webhooks)
        for _ in range(s.runs):
            reset(receiver)
            cpu_before = cpu_seconds(server.pid)
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
            ours.append(total / (stats["last"] - burst.started))
            publish_seconds.append(burst.seconds)
            server_cpu_ms.append((cpu_seconds(server.pid) - cpu_before) * 1000 / total)

            reset(receiver)
            burst = checked(ctx.run(load.post_burst, hook, total, s.concurrency), "bare loop")
            stats = wait_arrivals(receiver, total)
            ceiling.append(total / (stats["last"] - burst.started))
            bare_cpu_ms.append(burst.cpu_seconds * 1000 / total)
    finally:
        server.stop()
        receiver.stop()
    ctx.add(
        Row(
            DELIVERY,
            f"(a) sustained deliveries, {s.delivery_webhooks} webhooks",
            "deliveries/s",
            ours,
            ceiling,
            "bare aiohttp POST loop",
            # Issue 12 set this target at 30% (it was 50%).
            Target("ratio>=", 0.3, ">= 30% of ceiling"),
        )
    )
    ctx.note(
        DELIVERY,
        f"(a) {s.delivery_webhooks} signed webhooks on the receiver; {s.delivery_events} events "
        f"published over gRPC by {s.publish_concurrency} concurrent callers in a load process "
        f"({total} deliveries); the figure is deliveries / (the receiver's last arrival - the "
        f"first publish). Publishing took a median {median(publish_seconds):.2f} s. Ceiling: "
        f"{total} POSTs of the same body, {s.concurrency} in flight (the worker's limit), from "
        "an aiohttp client process to the same receiver, timed the same way.",
    )
    ctx.note(
        DELIVERY,
        f"(a) CPU time, which the machine's noise disturbs less than rates: the server spent a "
        f"median {median(server_cpu_ms):.3f} ms of CPU per delivery (publishing included); the "
        f"bare loop's client process {median(bare_cpu_ms):.3f} ms per POST.",
    )


def latency(ctx: Context) -> None:
    """(b) publish-to-first-attempt latency at a fixed event rate."""
    s = ctx.settings
    workdir = ctx.subdir("latency")
    receiver = Child.of("receiver", workdir)
    server = start_server(workdir)
    hook = receiver.http_url + load.HOOK_PATH
    count = max(1, round(s.latency_rate * s.latency_seconds))
    ours: dict[int, list[float]] = {50: [], 99: []}
    ceiling: dict[int, list[float]] = {50: [], 99: []}
    try:
        subscribe(server.grpc_address, hook, 1)
        for _ in range(s.runs):
            for fn, target, into in (
                (load.publish_paced, server.grpc_address, ours),
                (load.post_paced, hook, ceiling),
            ):
                reset(receiver)
                checked(ctx.run(fn, target, s.latency_rate, s.latency_seconds), fn.__name__)
                wait_arrivals(receiver, count)
                latencies = http_json(receiver.http_url + "/stats?latencies=1")["latencies_ms"]
                for q, values in into.items():
                    values.append(percentile(latencies, q))
    finally:
        server.stop()
        receiver.stop()
    rate = f"{s.latency_rate:g} events/s"
    ctx.add(
        Row(
            DELIVERY,
            f"(b) publish to first attempt, p50 at {rate}",
            "ms",
            ours[50],
            ceiling[50],
            "bare POST loop",
        )
    )
    ctx.add(
        Row(
            DELIVERY,
            f"(b) publish to first attempt, p99 at {rate}",
            "ms",
            ours[99],
            ceiling[99],
            "bare POST loop",
            Target("<=", 50.0, "<= 50 ms"),
        )
    )
    ctx.note(
        DELIVERY,
        f"(b) One webhook; a load process publishes {rate} for {s.latency_seconds:g} s "
        "(open loop: a call starts on schedule whether or not earlier ones returned), each "
        "with its send time in an extra data field, `bench_sent`; the receiver takes "
        "arrival - sent for every POST. Ceiling: the bare POST loop at the same rate with the "
        "same field, so the ceiling is the receiver and client's own latency.",
    )


def fanout(ctx: Context) -> None:
    """(c) one event to many webhooks: time until all have arrived."""
    s = ctx.settings
    workdir = ctx.subdir("fanout")
    receiver = Child.of("receiver", workdir)
    server = start_server(workdir)
    hook = receiver.http_url + load.HOOK_PATH
    ours: list[float] = []
    ceiling: list[float] = []
    try:
        subscribe(server.grpc_address, hook, s.fanout_webhooks)
        for _ in range(s.runs):
            reset(receiver)
            burst = checked(ctx.run(load.publish_burst, server.grpc_address, 1, 1), "publishing")
            ours.append(wait_arrivals(receiver, s.fanout_webhooks)["last"] - burst.started)
            reset(receiver)
            burst = checked(
                ctx.run(load.post_burst, hook, s.fanout_webhooks, s.concurrency), "bare loop"
            )
            ceiling.append(wait_arrivals(receiver, s.fanout_webhooks)["last"] - burst.started)
    finally:
        server.stop()
        receiver.stop()
    ctx.add(
        Row(
            DELIVERY,
            f"(c) one event to {s.fanout_webhooks:,} webhooks, all arrived",
            "s",
            ours,
            ceiling,
            "bare POST loop",
            Target("<=", 2.0, "<= 2 s"),
        )
    )
    ctx.note(
        DELIVERY,
        f"(c) {s.fanout_webhooks:,} signed webhooks on the receiver; time from the publish "
        "call to the receiver's last arrival. Ceiling: as many bare POSTs, "
        f"{s.concurrency} in flight.",
    )


def pending_counts(database: Path) -> tuple[int, int]:
    """Deliveries PENDING, and how many of those were attempted once already."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        pending, attempted = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(attempt_count > 0), 0) FROM deliveries WHERE status = 1"
        ).fetchone()
    return pending, attempted


def backlog(ctx: Context) -> None:
    """(d) memory with a large backlog of pending deliveries to a dead receiver."""
    s = ctx.settings
    workdir = ctx.subdir("backlog")
    database = workdir / "webhooks.db"
    # A long retry schedule keeps every delivery PENDING after its first, refused attempt.
    server = start_server(workdir, "--retry-schedule", "36000", database=database)
    dead = f"http://127.0.0.1:{free_port()}{load.HOOK_PATH}"
    total = s.backlog_webhooks * s.backlog_events
    try:
        subscribe(server.grpc_address, dead, s.backlog_webhooks)
        checked(
            ctx.run(
                load.publish_burst, server.grpc_address, s.backlog_events, s.publish_concurrency
            ),
            "publishing",
        )
        waited = wait_idle(server.pid, s.settle_timeout)
        samples = rss_samples(server.pid)
        peak = rss_mb(server.pid, "VmHWM")
        pending, attempted = pending_counts(database)
    finally:
        server.stop()
    reference = ctx.reference_rss()
    name = f"RSS with {total:,} pending deliveries to a dead receiver"
    target = Target("<=", 300.0, "< 300 MB")
    ctx.add(Row(DELIVERY, f"(d) {name}", "MB", samples, [reference], "no-op gRPC server", target))
    ctx.add(Row(MEMORY, name, "MB", samples, [reference], "no-op gRPC server", target))
    ctx.note(
        DELIVERY,
        f"(d) {s.backlog_webhooks} webhooks on a loopback port nothing listens on, "
        f"{s.backlog_events:,} events published by {s.publish_concurrency} concurrent callers: "
        f"{total:,} deliveries, retry schedule 36000 s. RSS (VmRSS) sampled 3 times once the "
        f"server's CPU went idle ({waited:.0f} s after publishing); {pending:,} deliveries "
        f"were PENDING in the database then ({attempted:,} of them refused once and waiting "
        f"for their retry), and the peak RSS (VmHWM) was {peak:.0f} MB.",
    )
