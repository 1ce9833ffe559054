"""What every scenario shares: the sizes of a full or a smoke run, the process pool the load
comes from, and starting the server and its do-nothing counterparts."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import load
from bench.machine import rss_mb
from bench.procs import Child
from bench.report import Row

T = TypeVar("T")
PERMISSIVE = ("--allow-private-urls", "--allowed-schemes", "http,https")
# The report's first rows: the single-webhook pipeline, and REST GET against MLflow's server.
HEADLINE = "0. Headline"


@dataclass(frozen=True)
class Settings:
    runs: int = 3
    load_procs: int = 1  # processes the unary load is split over
    concurrency: int = 64
    warmup: float = 1.0
    seconds: float = 3.0  # one measuring window of the unary scenarios
    seed_webhooks: int = 100
    pipeline_events: int = 3000
    pipeline_publishers: int = 16
    delivery_webhooks: int = 16
    delivery_events: int = 500
    publish_concurrency: int = 8
    latency_rate: float = 200.0
    latency_seconds: float = 10.0
    fanout_webhooks: int = 1000
    filter_webhooks: int = 1000
    backlog_webhooks: int = 100
    backlog_events: int = 1000
    list_webhooks: int = 100_000
    deep_page: int = 500
    page_repeats: int = 20
    starts: int = 5
    settle_timeout: float = 180.0
    bridge_iterations: int = 300
    bridge_warmup: int = 20
    bridge_interval: float = 0.1
    console_webhooks: int = 1_000
    console_deliveries: int = 100_000
    console_loads: int = 10
    ordered_events: int = 1000

    @classmethod
    def smoke(cls) -> Settings:
        return cls(
            runs=1,
            warmup=0.2,
            seconds=0.4,
            seed_webhooks=100,
            delivery_events=5,
            pipeline_events=40,
            latency_rate=50.0,
            latency_seconds=0.5,
            fanout_webhooks=40,
            filter_webhooks=40,
            backlog_webhooks=10,
            backlog_events=10,
            list_webhooks=1_000,
            deep_page=5,
            page_repeats=3,
            starts=1,
            settle_timeout=20.0,
            bridge_iterations=5,
            bridge_warmup=1,
            bridge_interval=0.0,
            console_webhooks=100,
            console_deliveries=1_000,
            console_loads=2,
            ordered_events=20,
        )


@dataclass
class Context:
    settings: Settings
    pool: ProcessPoolExecutor
    workdir: Path
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    _reference_rss: float | None = None

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(
            f"  {row.section} {row.name}: {row.figure:,.2f} {row.unit}"
            + (f" (ceiling {row.ceiling:,.2f}, ratio {row.ratio:.2f})" if row.ratio else "")
            + f" {row.result}",
            flush=True,
        )
        return row

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """One call of a load function in a pool process."""
        return self.pool.submit(fn, *args).result()

    def rate(
        self, fn: Callable[..., load.Rate], target: str, method: str, ids: list[str], pid: int
    ) -> tuple[float, float]:
        """Calls/s of a closed-loop load split over `load_procs` processes, and the CPU time
        the measured process `pid` spent per call (ms)."""
        s = self.settings
        share = s.concurrency // s.load_procs
        cpu_before = cpu_seconds(pid)
        futures = [
            self.pool.submit(fn, target, method, ids, share, s.warmup, s.seconds)
            for _ in range(s.load_procs)
        ]
        results = [f.result() for f in futures]
        cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, sum(r.total for r in results))
        errors = [r for r in results if r.errors]
        if errors:
            raise RuntimeError(f"{method} against {target}: {errors[0].first_error}")
        return sum(r.per_second for r in results), cpu_ms

    def reference_rss(self) -> float:
        """RSS of the do-nothing gRPC server: what a Python process serving grpc.aio costs."""
        if self._reference_rss is None:
            noop = Child.of("noop-grpc", self.workdir)
            try:
                time.sleep(0.5)
                self._reference_rss = rss_mb(noop.pid)
            finally:
                noop.stop()
        return self._reference_rss

    def subdir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def server_command(database: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow_webhooks.server",
        "--grpc-address",
        "127.0.0.1:0",
        "--http-address",
        "127.0.0.1:0",
        "--database-url",
        f"sqlite:///{database}",
        *PERMISSIVE,
        *args,
    ]


def start_server(workdir: Path, *args: str, database: Path | None = None) -> Child:
    """The real server (`python -m server`) on free ports, with plain-HTTP loopback
    receivers allowed, on a fresh SQLite file unless one is given."""
    database = database or workdir / "webhooks.db"
    return Child(server_command(database, *args), "server").start(workdir, expect=("grpc", "http"))


def clean_environment() -> None:
    """The server reads WEBHOOKS_* variables; none from the caller's shell may change what
    is measured."""
    for name in [n for n in os.environ if n.startswith("WEBHOOKS_")]:
        del os.environ[name]


def http_json(url: str, method: str = "GET", timeout: float = 10.0) -> Any:
    """A JSON answer of one of the bench's own loopback processes."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"not a bench process: {url}")
    data = b"" if method == "POST" else None
    request = urllib.request.Request(url, method=method, data=data)  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.load(response)


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process so far; with `children`, of its live child
    processes too (the workers of --workers N)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total += sum(cpu_seconds(int(kid)) for kid in kids)
    return total


def wait_idle(pid: int, timeout: float, busy_share: float = 0.05, interval: float = 0.5) -> float:
    """Waits until the process used under `busy_share` of a core over two intervals in a
    row; the seconds waited."""
    started = time.perf_counter()
    quiet = 0
    last = cpu_seconds(pid)
    while time.perf_counter() - started < timeout and quiet < 2:
        time.sleep(interval)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < busy_share * interval else 0
        last = now
    return time.perf_counter() - started
