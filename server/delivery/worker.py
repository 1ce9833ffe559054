"""The delivery worker: claims due rows from the outbox with a lease, sends them through the
Sender under a global and a per-webhook concurrency limit, and records results in batches.

The queue is the database. The process holds at most `concurrency` claimed rows, so a backlog
of any size costs no memory here, and a process that dies leaves only leases that expire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from server import observe
from server.delivery.sender import Attempt, Sender, payload
from server.store import AttemptRecord, DeliveryStatus, Outcome, Outgoing, Store, now_ms

log = logging.getLogger(__name__)

RETRY_AFTER_CAP = 3600.0  # a receiver cannot park a delivery for longer than an hour
JITTER = 0.1  # retries spread over +-10% of their delay so a recovering receiver is not stampeded
IDLE_POLL = 0.5  # seconds between claims when idle; publishes in this process wake it at once
FLUSH_INTERVAL = 0.02  # attempt results wait at most this long to be written in one batch

Db = Callable[..., Awaitable[Any]]


def attempt_record(number: int, attempt: Attempt) -> AttemptRecord:
    return AttemptRecord(
        number=number,
        timestamp=attempt.sent_at_ms,
        duration_ms=attempt.duration_ms,
        response_status=attempt.status,
        response_body=attempt.body,
        error=attempt.error,
    )


def decide(item: Outgoing, attempt: Attempt, schedule: tuple[float, ...], now: int) -> Outcome:
    """The retry policy: what an attempt's result makes of its delivery."""
    number = item.attempt_count + 1
    record = attempt_record(number, attempt)
    if attempt.succeeded:
        return Outcome(item.delivery_id, record, DeliveryStatus.SUCCEEDED, None)
    disable = item.webhook_id if attempt.status == 410 else None
    retries_done = number - 1
    if not attempt.retryable or retries_done >= len(schedule):
        return Outcome(item.delivery_id, record, DeliveryStatus.FAILED, None, disable)
    delay = schedule[retries_done] * random.uniform(1 - JITTER, 1 + JITTER)
    if attempt.retry_after is not None:
        delay = max(delay, min(attempt.retry_after, RETRY_AFTER_CAP))
    return Outcome(item.delivery_id, record, DeliveryStatus.PENDING, now + int(delay * 1000))


OUTCOME_NAMES = {
    DeliveryStatus.SUCCEEDED: "succeeded",
    DeliveryStatus.PENDING: "retrying",
    DeliveryStatus.FAILED: "failed",
}


def observed(item: Outgoing, outcome: Outcome) -> None:
    """Logs and counts one attempt."""
    attempt = outcome.attempt
    observe.record_attempt(
        OUTCOME_NAMES[outcome.status],
        item.delivery_id,
        item.webhook_id,
        item.url or "",
        attempt.number,
        attempt.response_status,
        attempt.duration_ms,
        attempt.error,
    )


def body_of(item: Outgoing) -> bytes:
    return payload(item.event, json.loads(item.data), item.occurred_at)


class Worker:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        db: Db,
        schedule: tuple[float, ...],
        lease_seconds: float,
        concurrency: int = 64,
        per_webhook: int = 8,
    ) -> None:
        self._store = store
        self._sender = sender
        self._db = db
        self._schedule = schedule
        self._lease_ms = int(lease_seconds * 1000)
        self._concurrency = concurrency
        self._per_webhook = per_webhook
        self.owner = f"worker-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._per_hook: Counter[str] = Counter()
        self._pending: list[Outcome] = []
        self._flushed = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Claims at once instead of at the next poll: called after a publish commits."""
        self._wake.set()

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop()),
            asyncio.create_task(self._flush_loop()),
        ]

    async def stop(self, grace: float) -> None:
        """Stops claiming, lets in-flight attempts finish within `grace`, records what
        finished, and hands back the leases of what did not."""
        self._stopping = True
        self._wake.set()
        unfinished: list[str] = []
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight.values(), timeout=grace)
            unfinished = [key for key, task in self._in_flight.items() if task in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self._flush()
        if unfinished:
            await self._db(self._store.release, self.owner, unfinished)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            # Cleared before claiming, so a publish that commits while the claim runs is not
            # lost: the wait below then returns at once instead of after IDLE_POLL.
            self._wake.clear()
            free = self._concurrency - len(self._in_flight)
            claimed: list[Outgoing] = []
            if free > 0:
                busy = {hook for hook, n in self._per_hook.items() if n >= self._per_webhook}
                try:
                    claimed = await self._db(
                        self._store.claim, self.owner, now_ms(), self._lease_ms, free, busy
                    )
                except Exception:
                    log.exception("claiming deliveries failed; retrying")
            excess = [item.delivery_id for item in claimed if not self._start(item)]
            if excess:
                # One claim may return more rows of a webhook than its limit leaves room for:
                # hand those back at once rather than hold them, so one slow receiver never
                # keeps more than its share of the slots (or of the leases).
                try:
                    await self._db(self._store.release, self.owner, excess)
                except Exception:
                    log.exception("handing back %d deliveries failed", len(excess))
            if len(claimed) < free or free <= 0:
                # Nothing more is due (or every slot is busy): wait for a publish, a finished
                # attempt, or the poll interval, whichever comes first.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL)

    def _start(self, item: Outgoing) -> bool:
        """Starts sending `item`, unless its webhook already has its limit in flight."""
        if self._per_hook[item.webhook_id] >= self._per_webhook:
            return False
        self._per_hook[item.webhook_id] += 1
        task = asyncio.create_task(self._deliver(item))
        self._in_flight[item.delivery_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(item.delivery_id, None)
            self._per_hook[item.webhook_id] -= 1
            if self._per_hook[item.webhook_id] <= 0:
                del self._per_hook[item.webhook_id]
            self._wake.set()

        task.add_done_callback(done)
        return True

    async def _deliver(self, item: Outgoing) -> None:
        if item.url is None or not item.webhook_active:
            await self._db(self._store.cancel, [item.delivery_id])
            return
        attempt = await self._sender.send(item.url, item.secret, item.delivery_id, body_of(item))
        outcome = decide(item, attempt, self._schedule, now_ms())
        observed(item, outcome)
        self._pending.append(outcome)
        # The row stays leased until the batch holding its result is written, and its slot
        # stays taken until then too. Freeing the slot at once delivered faster in the bench,
        # but then, with --workers N, the process that receives the publishes (woken by
        # them) claims nearly every delivery before the other workers' polls see any.
        self._flushed.clear()
        await self._flushed.wait()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            if self._pending:
                await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                await self._db(self._store.record, batch)
            except Exception:
                # The rows keep their leases and go out again when these expire.
                log.exception("recording %d delivery attempts failed", len(batch))
            retries = [o.next_attempt_timestamp for o in batch if o.next_attempt_timestamp]
            if retries:
                # Claim again when the earliest retry is due rather than at the next poll.
                delay = max(0.0, (min(retries) - now_ms()) / 1000)
                asyncio.get_running_loop().call_later(delay, self._wake.set)
        self._flushed.set()
