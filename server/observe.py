"""What operators see: one structured log line and the Prometheus metrics for every call and
every delivery attempt, both recorded here so the two always agree. Nothing secret reaches
either: calls are logged by method and code, attempts by ids, host and status."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from aiohttp.http_exceptions import HttpProcessingError
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
EGRESS_REFUSALS = Counter(
    "webhooks_egress_refusals_total",
    "Destinations refused, by rule (private, metadata, proxy) and stage (create: a webhook's "
    "URL at create/update; connect: a delivery or test attempt)",
    ["rule", "stage"],
)

CALLS_LOGGER = "webhooks.calls"
ATTEMPTS_LOGGER = "webhooks.deliveries"


class AccessLog:
    """The per-call and per-attempt lines, in the same text or JSON form as every other log
    line, but formatted here and written once per event-loop iteration for all the lines
    that iteration made: the logging module's per-record work (a LogRecord, the caller's
    frame, a lock and a flushed write per line) cost more than the rest of a getWebhook
    call's logging and metrics together (docs/benchmarks.md)."""

    def __init__(self, log_format: str, stream: TextIO) -> None:
        self._json = log_format == "json"
        self._stream = stream
        self._pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def write(self, logger: str, message: str, fields: dict[str, Any]) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:  # the date part is made once a second
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        stamp = f"{self._stamp},{int((now - second) * 1000):03d}"
        if self._json:
            entry = {"time": stamp, "level": "INFO", "logger": logger, "message": message}
            line = json.dumps({**entry, **fields}, default=str)
        else:
            pairs = " ".join(f"{k}={_text_value(v)}" for k, v in fields.items() if v is not None)
            line = f"{stamp} INFO {logger} {message} {pairs}"
        self._pending.append(line + "\n")
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop here: write at once
                self.flush()

    def flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._stream.write(text)
            self._stream.flush()


# None while --access-log is off; set by setup_logging.
access_log: AccessLog | None = None


def flush_access_log() -> None:
    """Writes the lines still waiting for their loop iteration (at shutdown)."""
    if access_log is not None:
        access_log.flush()


# What a caller sends never becomes a label or a log field unchecked: each label value is
# one of a fixed set, so made-up method names cannot grow the metrics without bound.
UNKNOWN_METHOD = "unknown"
HTTP_VERBS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id(presented: str | None) -> str:
    """The caller's X-Request-Id if it is a plain id (letters, digits, `.`, `_`, `-`; at most
    128), else a new id: anything else could forge fields of a text log line."""
    if presented and _REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


def rest_method(verb: str, route: str | None) -> str:
    """The label of a REST call: a known verb (else OTHER) and the route's pattern (else
    unmatched), never the path the caller sent."""
    return f"{verb if verb in HTTP_VERBS else 'OTHER'} {route or 'unmatched'}"


def record_call(
    transport: str, method: str, code: str, started: float, rid: str, peer: str | None
) -> None:
    seconds = time.perf_counter() - started
    _child(CALLS, method, transport, code).inc()
    _child(CALL_SECONDS, method, transport).observe(seconds)
    if access_log is not None:
        access_log.write(
            CALLS_LOGGER,
            "call",
            {
                "request_id": rid,
                "transport": transport,
                "method": method,
                "code": code,
                "duration_ms": round(seconds * 1000, 2),
                "peer": peer,
            },
        )


def record_attempt(
    outcome: str,
    delivery_id: str,
    webhook_id: str,
    host: str,
    number: int,
    status: int | None,
    duration_ms: int,
    error: str | None,
) -> None:
    _child(ATTEMPTS, outcome).inc()
    ATTEMPT_SECONDS.observe(duration_ms / 1000)
    if access_log is not None:
        access_log.write(
            ATTEMPTS_LOGGER,
            "delivery attempt",
            {
                "delivery_id": delivery_id,
                "webhook_id": webhook_id,
                # The host only (validation.host_of): users put credentials in paths and
                # query strings, so the URL is never handed to the log at all.
                "host": host,
                "attempt": number,
                "status": status,
                "outcome": outcome,
                "duration_ms": duration_ms,
                "error": error,
            },
        )


def record_refusal(rule: str, stage: str) -> None:
    """Counts one refusal; `rule` is an egress.Rule and `stage` create or connect, never
    anything a caller sent."""
    _child(EGRESS_REFUSALS, rule, stage).inc()


_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """metric.labels(*labels), kept: the label values are few (methods, codes, outcomes),
    and looking a child up again takes a lock and a tuple each time."""
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def render(
    backlog: tuple[int, float] | None,
    database_last_answer: float | None,
    windows: Sequence[tuple[str, int, int]] = (),
) -> bytes:
    """The exposition text: this process's (or all workers') metrics, the backlog (pending
    deliveries, age of the oldest in seconds) as the database sees it now, left out when the
    database did not answer, when the database last answered this process's probe, and this
    process's adaptive window of each webhook it sent to lately (webhook id, attempts allowed
    in flight, attempts in flight)."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    database_registry = CollectorRegistry()
    database_registry.register(_Database(backlog, database_last_answer, windows))
    return generate_latest(registry) + generate_latest(database_registry)


class _Database:
    def __init__(
        self,
        backlog: tuple[int, float] | None,
        last_answer: float | None,
        windows: Sequence[tuple[str, int, int]],
    ) -> None:
        self._backlog = backlog
        self._last_answer = last_answer
        self._windows = windows

    def collect(self) -> Any:
        if self._backlog is not None:
            pending, oldest_age = self._backlog
            yield GaugeMetricFamily(
                "webhooks_deliveries_pending", "Deliveries waiting to be sent", value=pending
            )
            yield GaugeMetricFamily(
                "webhooks_oldest_pending_delivery_age_seconds",
                "Age of the oldest delivery still waiting",
                value=oldest_age,
            )
        if self._last_answer is not None:
            yield GaugeMetricFamily(
                "webhooks_database_last_answer_timestamp_seconds",
                "Unix time the database last answered this process's health probe",
                value=self._last_answer,
            )
        # Labelled by webhook id, which the server makes (a UUID), never a caller; only
        # webhooks this process sent to lately, and none that was deleted.
        allowed = GaugeMetricFamily(
            "webhooks_delivery_concurrency_limit",
            "Deliveries to the webhook this process allows in flight now (adaptive: within its "
            "maximum, lowered while its receiver signals overload)",
            labels=["webhook_id"],
        )
        in_flight = GaugeMetricFamily(
            "webhooks_deliveries_in_flight",
            "Deliveries to the webhook this process has on the wire now",
            labels=["webhook_id"],
        )
        for webhook_id, limit, sending in self._windows:
            allowed.add_metric([webhook_id], limit)
            in_flight.add_metric([webhook_id], sending)
        yield allowed
        yield in_flight


_NEEDS_QUOTES = re.compile(r"[\s=\"\\]")


def _text_value(value: object) -> str:
    """A field value as one token: quoted (JSON) when it holds a space, `=` or a quote, so
    free text such as an error message cannot pass for further fields."""
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return json.dumps(text) if _NEEDS_QUOTES.search(text) else text


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(
                f"{k}={_text_value(v)}" for k, v in fields.items() if v is not None
            )
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


class Throttle:
    """Lets one line of a kind through every `every` seconds and counts the rest, so what a
    caller can provoke at will (bad requests, accept errors) cannot flood the log."""

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._next: dict[str, float] = {}
        self._dropped: collections.Counter[str] = collections.Counter()

    def __call__(self, kind: str) -> int | None:
        """None when this line is to be dropped; else how many of its kind were dropped
        since the last one let through."""
        now = self._clock()
        if now < self._next.get(kind, -math.inf):
            self._dropped[kind] += 1
            return None
        self._next[kind] = now + self._every
        return self._dropped.pop(kind, 0)


class _BadRequests(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR with a traceback quoting the bytes
    the caller sent. Such a request is the caller's mistake, or an attack: one line with
    the error's name instead, at most every few seconds."""

    def __init__(self) -> None:
        super().__init__()
        self._throttle = Throttle()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        dropped = self._throttle("bad request")
        if dropped is None:
            return False
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg = "unreadable HTTP request from %s refused with 400 (%s; %d more since the last)"
        record.args = (peer, type(error).__name__, dropped)
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def setup_logging(log_format: str, access: bool = True) -> None:
    """Every log line to standard error in `log_format`; the per-call and per-attempt lines
    only when `access` is on."""
    global access_log
    access_log = AccessLog(log_format, sys.stderr) if access else None
    logging.getLogger("aiohttp.server").addFilter(_BadRequests())
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
