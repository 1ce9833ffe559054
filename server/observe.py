"""What operators see: one structured log line and the Prometheus metrics for every call and
every delivery attempt, both recorded here so the two always agree. Nothing secret reaches
either: calls are logged by method and code, attempts by ids, host and status."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

# With --workers N the supervisor sets this before the workers import us; the metrics then
# live in files there and a scrape of any worker adds up all of them.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

CALLS = Counter(
    "webhooks_calls_total",
    "Calls answered, by method, transport and status code",
    ["method", "transport", "code"],
)
CALL_SECONDS = Histogram(
    "webhooks_call_duration_seconds",
    "Time to answer a call",
    ["method", "transport"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)
ATTEMPTS = Counter(
    "webhooks_delivery_attempts_total",
    "Delivery attempts by outcome (succeeded, retrying, failed; test for testWebhook sends)",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "webhooks_delivery_attempt_duration_seconds",
    "Time of one delivery POST",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)

calls_log = logging.getLogger("webhooks.calls")
attempts_log = logging.getLogger("webhooks.deliveries")


def request_id(presented: str | None) -> str:
    """The caller's X-Request-Id if it sent a sane one, else a new id."""
    if presented and len(presented) <= 128 and presented.isprintable():
        return presented
    return uuid.uuid4().hex


def record_call(
    transport: str, method: str, code: str, started: float, rid: str, peer: str | None
) -> None:
    seconds = time.perf_counter() - started
    CALLS.labels(method, transport, code).inc()
    CALL_SECONDS.labels(method, transport).observe(seconds)
    calls_log.info(
        "call",
        extra={
            "fields": {
                "request_id": rid,
                "transport": transport,
                "method": method,
                "code": code,
                "duration_ms": round(seconds * 1000, 2),
                "peer": peer,
            }
        },
    )


def record_attempt(
    outcome: str,
    delivery_id: str,
    webhook_id: str,
    url: str,
    number: int,
    status: int | None,
    duration_ms: int,
    error: str | None,
) -> None:
    ATTEMPTS.labels(outcome).inc()
    ATTEMPT_SECONDS.observe(duration_ms / 1000)
    attempts_log.info(
        "delivery attempt",
        extra={
            "fields": {
                "delivery_id": delivery_id,
                "webhook_id": webhook_id,
                # The host only: users put credentials in paths and query strings.
                "host": urlsplit(url).hostname,
                "attempt": number,
                "status": status,
                "outcome": outcome,
                "duration_ms": duration_ms,
                "error": error,
            }
        },
    )


def render(backlog: int, oldest_pending_age: float) -> bytes:
    """The exposition text: this process's (or all workers') metrics, and the backlog as the
    database sees it now."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    backlog_registry = CollectorRegistry()
    backlog_registry.register(_Backlog(backlog, oldest_pending_age))
    return generate_latest(registry) + generate_latest(backlog_registry)


class _Backlog:
    def __init__(self, pending: int, oldest_age: float) -> None:
        self._pending = pending
        self._oldest_age = oldest_age

    def collect(self) -> Any:
        yield GaugeMetricFamily(
            "webhooks_deliveries_pending", "Deliveries waiting to be sent", value=self._pending
        )
        yield GaugeMetricFamily(
            "webhooks_oldest_pending_delivery_age_seconds",
            "Age of the oldest delivery still waiting",
            value=self._oldest_age,
        )


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
