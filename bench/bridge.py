"""Section 8: the MLflow bridge against the same MLflow without it, side by side in one run.

Two `mlflow server` processes from the cached MLflow venv of tests/mlflow_env.py: a plain
one with a native webhook, and one with the bridge (`--app-name webhooks-bridge`, this
checkout's clients/mlflow_bridge, replace mode) publishing to the real service, which has
the same webhook. Both webhooks point at one receiver process. A load process makes the same
registry calls against both, alternating, one at a time, and the figures are

(a) how long each call takes (create a model version, set an alias), p50 and p99: what the
    bridge adds to MLflow's answer (spooling the event, fsync'ed, before MLflow answers);
(b) registry change to receiver: from the start of the call to the webhook's arrival, the
    bridge and the service against MLflow's own in-process delivery."""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import Context, http_json, start_server
from bench.machine import load_average, median, percentile
from bench.procs import Child
from bench.report import Row

BRIDGE = "8. MLflow bridge"
API = "/api/2.0/mlflow"
EVENTS = [
    {"entity": "MODEL_VERSION", "action": "CREATED"},
    {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"},
]
# Not a local path: MLflow checks nothing behind a remote source, and copies nothing.
SOURCE = "s3://bench-bucket/models/churn"
ARRIVAL_TIMEOUT = 120.0
VIAS = ("native", "bridge")  # MLflow's own delivery; the bridge and the service
OPS = ("create", "alias")


def post_json(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """One JSON POST to one of the bench's own loopback processes."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"not a bench process: {url}")
    request = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.load(response)


def start_mlflows(workdir: Path, service_url: str) -> dict[str, Any]:
    """The plain and the bridged MLflow server, started side by side (each takes 15-25 s).
    MLflow's own webhook cache keeps its default TTL here (the tests turn it off)."""
    from tests.mlflow_env import install_bridge, mlflow_python, start_mlflow

    python = mlflow_python()
    common = {"MLFLOW_WEBHOOK_CACHE_TTL": "60"}
    bridged_env = {
        **common,
        "PYTHONPATH": str(install_bridge(python, workdir / "bridge-site")),
        "MLFLOW_WEBHOOKS_URL": service_url,
        "MLFLOW_WEBHOOKS_SPOOL_DIR": str(workdir / "spool"),
        "MLFLOW_WEBHOOKS_MODE": "replace",
    }
    with ThreadPoolExecutor(2) as starting:
        native = starting.submit(start_mlflow, python, workdir / "plain", env=common)
        bridge = starting.submit(
            start_mlflow, python, workdir / "bridged", app_name="webhooks-bridge", env=bridged_env
        )
        servers: dict[str, Any] = {}
        try:
            servers["native"] = native.result()
        finally:
            try:
                servers["bridge"] = bridge.result()
            except BaseException:
                for server in servers.values():
                    server.kill()
                raise
    return servers


def registry_calls(
    urls: dict[str, str], model: str, iterations: int, warmup: int, interval: float
) -> list[dict[str, Any]]:
    """Runs in a load process: per iteration, a model version created on each server, then
    an alias set on it, the servers' order alternating; an iteration starts every `interval`
    seconds at most. One record per measured call: server, op, the key its event's data
    carries, wall-clock start and duration (ms)."""
    connections = {
        via: http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=60)
        for via, url in urls.items()
    }

    def call(via: str, path: str, body: dict[str, Any]) -> tuple[float, float, Any]:
        connection = connections[via]
        payload = json.dumps(body)
        sent, started = time.time(), time.perf_counter()
        connection.request(
            "POST", API + path, payload, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{via} {path}: HTTP {response.status} {answer[:300]!r}")
        return sent, elapsed, json.loads(answer)

    for via in urls:
        call(via, "/registered-models/create", {"name": model})
    records: list[dict[str, Any]] = []
    begin = time.perf_counter()
    for i in range(warmup + iterations):
        order = list(urls) if i % 2 == 0 else list(reversed(urls))
        versions: dict[str, str] = {}
        for via in order:
            sent, ms, answer = call(
                via, "/model-versions/create", {"name": model, "source": SOURCE}
            )
            versions[via] = answer["model_version"]["version"]
            if i >= warmup:
                key = f"{model}/{versions[via]}/"
                records.append({"via": via, "op": "create", "key": key, "sent": sent, "ms": ms})
        alias = f"a{i}"
        for via in order:
            body = {"name": model, "alias": alias, "version": versions[via]}
            sent, ms, _ = call(via, "/registered-models/alias", body)
            if i >= warmup:
                key = f"{model}/{versions[via]}/{alias}"
                records.append({"via": via, "op": "alias", "key": key, "sent": sent, "ms": ms})
        pause = begin + (i + 1) * interval - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    for connection in connections.values():
        connection.close()
    return records


def wait_mlflow_arrivals(receiver: Child, count: int) -> list[dict[str, Any]]:
    deadline = time.perf_counter() + ARRIVAL_TIMEOUT
    while True:
        stats = http_json(receiver.http_url + "/stats?arrivals=1")
        if len(stats["arrivals"]) >= count:
            return stats["arrivals"]
        if time.perf_counter() > deadline:
            got = {via: sum(a["via"] == via for a in stats["arrivals"]) for via in VIAS}
            raise RuntimeError(f"the receiver got {got} of {count} MLflow webhooks in all")
        time.sleep(0.05)


def end_to_end(records: list[dict[str, Any]], arrivals: list[dict[str, Any]]) -> dict[str, list]:
    """Milliseconds from each measured call's start to its webhook's arrival, per via.
    Every event must arrive exactly once."""
    arrived: dict[tuple[str, str], float] = {}
    for a in arrivals:
        key = (a["via"], a["key"])
        if key in arrived:
            raise RuntimeError(f"{a['via']}: {a['event']} for {a['key']} arrived twice")
        arrived[key] = a["time"]
    latencies: dict[str, list[float]] = {via: [] for via in VIAS}
    for r in records:
        latencies[r["via"]].append((arrived[(r["via"], r["key"])] - r["sent"]) * 1000)
    return latencies


def bridge(ctx: Context) -> None:
    s = ctx.settings
    workdir = ctx.subdir("bridge")
    receiver = Child.of("receiver", workdir)
    service = start_server(workdir)
    servers: dict[str, Any] = {}
    calls: dict[tuple[str, str, int], list[float]] = {}
    e2e: dict[tuple[str, int], list[float]] = {}
    started = time.perf_counter()
    load_before = load_average()
    try:
        # The same webhook on both sides: subscribed to what the load does, signed.
        hook = {"url": "", "events": EVENTS, "secret": "bench-secret"}
        post_json(
            f"{service.http_url}{API}/webhooks",
            {**hook, "name": "bench-bridge", "url": receiver.http_url + "/mlflow/bridge"},
        )
        servers = start_mlflows(workdir, service.http_url)
        startup = time.perf_counter() - started
        post_json(
            f"{servers['native'].url}{API}/webhooks",
            {**hook, "name": "bench-native", "url": receiver.http_url + "/mlflow/native"},
        )
        urls = {via: servers[via].url for via in VIAS}
        per_run = s.bridge_warmup + s.bridge_iterations
        for run in range(s.runs):
            http_json(receiver.http_url + "/reset", "POST")
            records = ctx.run(
                registry_calls,
                urls,
                f"bench-{run}",
                s.bridge_iterations,
                s.bridge_warmup,
                s.bridge_interval,
            )
            # Two events per iteration, on each side, warm-up included.
            arrivals = wait_mlflow_arrivals(receiver, 2 * len(VIAS) * per_run)
            for via, values in end_to_end(records, arrivals).items():
                for q in (50, 99):
                    e2e.setdefault((via, q), []).append(percentile(values, q))
            for via in VIAS:
                for op in OPS:
                    durations = [r["ms"] for r in records if r["via"] == via and r["op"] == op]
                    for q in (50, 99):
                        calls.setdefault((via, op, q), []).append(percentile(durations, q))
        load_after = load_average()
    finally:
        # MLflow's graceful stop takes 15-20 s; nothing of theirs is measured after this.
        for server in servers.values():
            server.kill()
        service.stop()
        receiver.stop()
    names = {"create": "create model version", "alias": "set alias"}
    for op in OPS:
        for q in (50, 99):
            ctx.add(
                Row(
                    BRIDGE,
                    f"(a) {names[op]}, p{q}, with the bridge",
                    "ms",
                    calls[("bridge", op, q)],
                    calls[("native", op, q)],
                    "plain MLflow",
                )
            )
    for q in (50, 99):
        ctx.add(
            Row(
                BRIDGE,
                f"(b) registry change to receiver, p{q}, bridge and service",
                "ms",
                e2e[("bridge", q)],
                e2e[("native", q)],
                "MLflow's native webhook",
            )
        )
    ctx.note(
        BRIDGE,
        "Two `mlflow server` processes (MLflow 3.17.2 from the cached venv of "
        "tests/mlflow_env.py, SQLite backend store, one uvicorn worker each, MLflow's default "
        "webhook cache): a plain one with a native webhook, and one with the bridge "
        "(`--app-name webhooks-bridge`, this checkout's clients/mlflow_bridge, replace mode, "
        "spool on the local disk) publishing to the real service (`python -m server`, "
        "SQLite), which has the same webhook. Both webhooks are signed, subscribed to "
        "model_version.created and model_version_alias.created, and point at one receiver "
        f"process. Starting the servers took {startup:.0f} s (not measured).",
    )
    ctx.note(
        BRIDGE,
        f"A load process makes {s.bridge_iterations} iterations per run (after "
        f"{s.bridge_warmup} unmeasured ones), one every {s.bridge_interval * 1000:.0f} ms at "
        "most: a model version created on each server, then an alias set on it, one call at "
        "a time, the servers' order alternating, over one keep-alive connection per server "
        "(raw HTTP, not MLflow's client). (a) is each call's duration as the client sees it, "
        "p50 and p99 of the run, against the same call on the plain server. (b) is the time "
        "from the start of the call to the webhook's arrival at the receiver; every event "
        "is checked to arrive exactly once on each side.",
    )
    added = {
        op: median(calls[("bridge", op, 50)]) - median(calls[("native", op, 50)]) for op in OPS
    }
    ctx.note(
        BRIDGE,
        f"At p50 the bridge added {added['create']:+.1f} ms to create model version and "
        f"{added['alias']:+.1f} ms to set alias. Load average (1, 5, 15 min) before the "
        f"section: {load_before}; after it: {load_after}, on {os.cpu_count()} cores: above the "
        "core count, other processes shared the CPU with the servers during the run, and the "
        "p99 figures are mostly their noise.",
    )
