"""The sender: publishes the spool to the service, oldest event first, each once.

Every process of the MLflow server runs one; the one holding the spool's leader lock publishes
the events of all of them (their files merged in the order the events happened), the others
wait to take over. An event leaves the spool only when the service accepted it (2xx) or
refused it as invalid (it is then set aside); any other answer, or none, is retried with
backoff while the event, and every event after it, waits.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from mlflow_webhooks_bridge import spool

_logger = logging.getLogger("mlflow.webhooks_bridge")

PUBLISH_PATH = "/api/2.0/mlflow/webhook-events"
# Answers that will be the same however often the event is sent again: the service found the
# event itself wrong (400), its idempotency key taken by another event (409), or it too large.
# 401/403 are not here: a token can be fixed while the events wait.
REFUSED = frozenset({400, 409, 413, 422})
IDLE_POLL = 0.2  # how often the leader looks for events of the server's other processes
LEAD_POLL = 1.0  # how often a process that is not the leader tries to become it
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 5.0
RETRY_AFTER_MAX = 60.0
REQUEST_TIMEOUT = 10.0
STATE_INTERVAL = 1.0  # the status file's last_published_at is written at most this often


@dataclass(frozen=True)
class Outcome:
    kind: Literal["published", "refused", "retry"]
    detail: str = ""  # why, when not published: shown in the status and the log
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now, capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), RETRY_AFTER_MAX)


def classify(status: int, body: bytes, retry_after: str | None = None) -> Outcome:
    """What an answer of the service to a publish means for the event."""
    if 200 <= status < 300:
        return Outcome("published")
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = body[:200].decode("utf-8", errors="replace")
    detail = f"the service answered {status}" + (f": {message[:300]}" if message else "")
    if status in REFUSED:
        return Outcome("refused", detail)
    return Outcome("retry", detail, retry_after_seconds(retry_after))


def backoff(failures: int, jitter: float) -> float:
    """Seconds to wait after the `failures`-th failure in a row; `jitter` in [0, 1)."""
    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
    return delay * (0.5 + jitter / 2)


def publish_body(record: spool.Record) -> bytes:
    """publishEvent's JSON: the service names entities and actions in upper case."""
    return json.dumps(
        {
            "event": {"entity": record.entity.upper(), "action": record.action.upper()},
            "data": record.data,
            "idempotency_key": record.key,
        }
    ).encode()


class Publisher:
    def __init__(self, service_url: str, token: str | None, directory: Path) -> None:
        self._url = service_url + PUBLISH_PATH
        self._token = token
        self.directory = directory
        self.wake = threading.Event()  # set by this process's appends: no need to poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: dict[str, object] = {}
        self._state_written = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks-bridge", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread:
            self._thread.join(timeout)

    def publish(self, record: spool.Record) -> Outcome:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked at start-up)
            self._url, data=publish_body(record), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
                return classify(response.status, response.read())
        except urllib.error.HTTPError as e:
            return classify(e.code, e.read(), e.headers.get("Retry-After"))
        except (OSError, urllib.error.URLError) as e:
            reason = getattr(e, "reason", e)
            return Outcome("retry", f"cannot reach the service: {reason}")

    def _run(self) -> None:
        lead: int | None = None
        try:
            while not self._stop.is_set():
                if lead is None:
                    lead = spool.try_lead(self.directory)
                    if lead is None:
                        self._stop.wait(LEAD_POLL)
                        continue
                    _logger.info("webhooks bridge: process %d publishes the spool", os.getpid())
                try:
                    self._lead()
                except Exception:  # a bug or a disk error: logged, then tried again
                    _logger.exception("webhooks bridge: the sender failed; trying again")
                    self._stop.wait(1.0)
        finally:
            if lead is not None:
                os.close(lead)

    def _lead(self) -> None:
        """Publishes until stopped. A new reader each time: another leader may have moved
        the acks since this process last led."""
        reader = spool.SpoolReader(self.directory)
        failures = 0
        while not self._stop.is_set():
            reader.refresh()
            entry = reader.head()
            if entry is None:
                reader.remove_finished()
                self.wake.wait(IDLE_POLL)
                self.wake.clear()
                continue
            if entry.record is None:
                self._set_aside(reader, entry, "not a readable spool record")
                continue
            outcome = self.publish(entry.record)
            if outcome.kind == "published":
                reader.done(entry)
                failures = 0
                self._note()
            elif outcome.kind == "refused":
                self._set_aside(reader, entry, outcome.detail)
            else:
                failures += 1
                self._note(outcome.detail)
                if failures == 1 or failures % 20 == 0:
                    _logger.warning(
                        "webhooks bridge: publishing %s.%s failed (%s); %d events wait",
                        entry.record.entity,
                        entry.record.action,
                        outcome.detail,
                        spool.status(self.directory)["spooled"],
                    )
                delay = outcome.retry_after or backoff(failures, random.random())
                self._stop.wait(delay)

    def _set_aside(self, reader: spool.SpoolReader, entry: spool.Entry, reason: str) -> None:
        spool.set_aside(self.directory, entry, reason)
        reader.done(entry)
        what = f"{entry.record.entity}.{entry.record.action}" if entry.record else "a line"
        _logger.error(
            "webhooks bridge: %s refused (%s); kept in %s",
            what,
            reason,
            self.directory / spool.REJECTED,
        )
        self._note(reason)

    def _note(self, error: str | None = None) -> None:
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        if error is not None:
            changed = self._state.get("last_error") != error
            self._state.update(last_error=error, last_error_at=stamp)
        else:
            changed = "last_published_at" not in self._state
            self._state["last_published_at"] = stamp
        if changed or now - self._state_written >= STATE_INTERVAL:
            spool.write_state(self.directory, self._state)
            self._state_written = now
