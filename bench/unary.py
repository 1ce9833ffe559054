"""Sections 1 and 2: unary calls at 64 in flight, over gRPC and through the JSON shim,
against the real server and against do-nothing counterparts that answer a constant."""

from __future__ import annotations

import grpc

from bench import load
from bench.common import HEADLINE, Context, start_server
from bench.machine import median
from bench.procs import Child
from bench.report import Row, Target

GRPC = "1. gRPC"
REST = "2. REST"
HALF = Target("ratio>=", 0.5, ">= 50% of ceiling")
# Issue 12 set REST GET's target at 30% of a bare handler (it was 50%).
THIRD = Target("ratio>=", 0.3, ">= 30% of ceiling")


def seed(address: str, count: int) -> list[str]:
    """`count` webhooks, each with a secret as most real ones have, made before measuring."""
    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.WebhookServiceStub(channel)
        return [
            stub.createWebhook(
                pb.CreateWebhook(
                    name=f"seed-{i}",
                    url=load.CREATE_URL,
                    events=[pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)],
                    description="a webhook of the size the bench creates",
                    secret=f"secret-{i}",
                )
            ).webhook.webhook_id
            for i in range(count)
        ]


def grpc_unary(ctx: Context) -> None:
    s = ctx.settings
    workdir = ctx.subdir("grpc")
    server = start_server(workdir)
    noop = Child.of("noop-grpc", workdir)
    cpu_notes: list[str] = []
    try:
        ids = seed(server.grpc_address, s.seed_webhooks)
        for method in ("getWebhook", "createWebhook", "listWebhooks", "updateWebhook"):
            ours: list[float] = []
            ceiling: list[float] = []
            cpu: dict[str, list[float]] = {server.name: [], noop.name: []}
            for run in range(s.runs):
                # Alternate the order so drifting machine noise hits both sides alike.
                pair = [(server, ours), (noop, ceiling)]
                for child, into in pair if run % 2 == 0 else reversed(pair):
                    rate, cpu_ms = ctx.rate(
                        load.grpc_unary, child.grpc_address, method, ids, child.pid
                    )
                    into.append(rate)
                    cpu[child.name].append(cpu_ms)
            cpu_notes.append(
                f"{method} {median(cpu[server.name]):.2f} ms (no-op: {median(cpu[noop.name]):.2f})"
            )
            page = " (100 per page)" if method == "listWebhooks" else ""
            ctx.add(
                Row(
                    GRPC,
                    f"{method}{page}",
                    "calls/s",
                    ours,
                    ceiling,
                    "no-op grpc.aio",
                    HALF if method == "getWebhook" else None,
                )
            )
    finally:
        server.stop()
        noop.stop()
    ctx.note(
        GRPC,
        f"{s.concurrency} calls in flight from {s.load_procs} grpc.aio load process(es) over "
        f"one channel each; {s.warmup:g} s warm-up, then completed calls counted over "
        f"{s.seconds:g} s; {s.runs} runs, server and ceiling alternating.",
    )
    ctx.note(
        GRPC,
        f"The server runs on a fresh SQLite file with {s.seed_webhooks} webhooks, each with a "
        "secret; getWebhook and updateWebhook cycle through them, createWebhook adds new ones, "
        "listWebhooks reads the first page of 100.",
    )
    ctx.note(
        GRPC,
        "Ceiling: the same generated WebhookService in a grpc.aio server of its own that "
        "answers prebuilt responses of the same shape (one webhook; 100 for listWebhooks).",
    )
    ctx.note(
        GRPC,
        "CPU time of the serving process per call (median; the machine's noise disturbs it "
        "less than rates, and on 2 cores the server and the load generator share the CPU): "
        + "; ".join(cpu_notes)
        + ".",
    )


def rest_unary(ctx: Context) -> None:
    s = ctx.settings
    workdir = ctx.subdir("rest")
    server = start_server(workdir)
    bare = Child.of("bare-http", workdir)
    cpu_notes: list[str] = []
    try:
        ids = seed(server.grpc_address, s.seed_webhooks)
        for method, name in (("get", "GET one webhook"), ("create", "POST a webhook")):
            ours: list[float] = []
            ceiling: list[float] = []
            cpu: dict[str, list[float]] = {server.name: [], bare.name: []}
            for run in range(s.runs):
                pair = [(server, ours), (bare, ceiling)]
                for child, into in pair if run % 2 == 0 else reversed(pair):
                    rate, cpu_ms = ctx.rate(load.http_unary, child.http_url, method, ids, child.pid)
                    into.append(rate)
                    cpu[child.name].append(cpu_ms)
            cpu_notes.append(
                f"{name} {median(cpu[server.name]):.2f} ms (bare: {median(cpu[bare.name]):.2f})"
            )
            ctx.add(
                Row(
                    REST,
                    name,
                    "req/s",
                    ours,
                    ceiling,
                    "bare aiohttp",
                    THIRD if method == "get" else None,
                )
            )
    finally:
        server.stop()
        bare.stop()
    ctx.note(
        REST,
        f"`GET /api/2.0/mlflow/webhooks/{{id}}` and `POST /api/2.0/mlflow/webhooks` at "
        f"{s.concurrency} in flight from aiohttp client process(es) ({s.load_procs}) over "
        "keep-alive connections; windows and runs as in section 1.",
    )
    ctx.note(
        REST,
        "Ceiling: a bare aiohttp handler on the same paths, in a process of its own, answering "
        "the JSON body of one webhook (and reading the POST body).",
    )
    ctx.note(
        REST, "CPU time of the serving process per request (median): " + "; ".join(cpu_notes) + "."
    )


def rest_vs_mlflow(ctx: Context) -> None:
    """REST GET one webhook: the service against MLflow 3.17.2's own `mlflow server` (the
    cached venv of tests/mlflow_env.py), each with the same webhooks, in one run."""
    from bench.bridge import post_json
    from tests.mlflow_env import MLFLOW_VERSION, mlflow_python, start_mlflow

    s = ctx.settings
    workdir = ctx.subdir("rest-mlflow")
    server = start_server(workdir)
    mlflow = start_mlflow(mlflow_python(), workdir / "mlflow")
    try:
        ids = seed(server.grpc_address, s.seed_webhooks)
        body = {
            "url": load.CREATE_URL,
            "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
            "description": "bench",
        }
        theirs_ids = [
            post_json(f"{mlflow.url}/api/2.0/mlflow/webhooks", {**body, "name": f"seed-{i}"})[
                "webhook"
            ]["webhook_id"]
            for i in range(s.seed_webhooks)
        ]
        ours: list[float] = []
        theirs: list[float] = []
        for run in range(s.runs):
            pair = [(server.http_url, ids, ours), (mlflow.url, theirs_ids, theirs)]
            for url, webhook_ids, into in pair if run % 2 == 0 else reversed(pair):
                rate = ctx.run(
                    load.http_unary, url, "get", webhook_ids, s.concurrency, s.warmup, s.seconds
                )
                if rate.errors:
                    raise RuntimeError(f"GET against {url}: {rate.first_error}")
                into.append(rate.per_second)
    finally:
        server.stop()
        mlflow.stop()
    ctx.add(
        Row(
            HEADLINE,
            f"REST GET one webhook vs MLflow {MLFLOW_VERSION}'s own server",
            "req/s",
            ours,
            theirs,
            f"mlflow server {MLFLOW_VERSION}",
            Target("ratio>=", 20.0, ">= 20x MLflow"),
        )
    )
    ctx.note(
        HEADLINE,
        f"Against MLflow: `mlflow server` {MLFLOW_VERSION} (its default uvicorn server, one "
        "worker, SQLite backend store) from the bench's own MLflow venv (tests/mlflow_env.py, "
        f"not the service's), with {s.seed_webhooks} webhooks made through its REST API; the "
        "same GET load as section 2's against each, alternating, in one run.",
    )
