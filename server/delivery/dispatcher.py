"""The delivery worker: claims due rows from the outbox with a lease, sends them through the
Sender under a global and a per-webhook concurrency limit (the webhook's adaptive window,
server/delivery/aimd.py, within its maximum), and records results in batches.

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

from mlflow_webhooks.server import observe, validation
from mlflow_webhooks.server.delivery import aimd
from mlflow_webhooks.server.delivery.sender import Attempt, Sender, payload
from mlflow_webhooks.server.delivery.settings import DEFAULT_MAX_CONCURRENCY
from mlflow_webhooks.server.errors import Unavailable
from mlflow_webhooks.server.store import (
    AttemptRecord,
    DeliveryStatus,
    Outcome,
    Outgoing,
    Store,
    now_ms,
)

log = logging.getLogger(__name__)

RETRY_AFTER_CAP = 3600.0  # a receiver cannot park a delivery for longer than an hour
JITTER = 0.1  # retries spread over +-10% of their delay so a recovering receiver is not stampeded
IDLE_POLL = 0.5  # seconds between claims when idle; publishes in this process wake it at once
# After a round fails (the database dropped the connection, or did not answer within
# --db-timeout) the next waits this long, doubling up to the cap, until one succeeds.
RETRY_FIRST = 0.05
RETRY_CAP = 2.0
# How often a round also looks at every ordered webhook's waiting deliveries (Store.exchange's
# every_turn): only an attempt that ended while its webhook's ordering was being turned on
# leaves a turn for it to pass.
EVERY_TURN_INTERVAL = 1.0

LEASE_MARGIN_MS = 10_000

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
    # An ordered webhook's next delivery waits for this one to end (server/ordering.py).
    turn = item.webhook_id if item.settings.ordered else None
    if attempt.succeeded:
        return Outcome(item.delivery_id, record, DeliveryStatus.SUCCEEDED, None, passes_turn=turn)
    disable = item.webhook_id if attempt.status == 410 else None
    # Redelivers are extra attempts: the schedule counts only its own.
    retries_done = item.attempt_count - item.manual_attempts
    if not attempt.retryable or retries_done >= len(schedule):
        reason = (
            f"The receiver answered 410 Gone to delivery {item.delivery_id} (attempt {number})."
            if disable
            else ""
        )
        return Outcome(item.delivery_id, record, DeliveryStatus.FAILED, None, disable, reason, turn)
    delay = schedule[retries_done] * random.uniform(1 - JITTER, 1 + JITTER)
    if attempt.retry_after is not None:
        delay = max(delay, min(attempt.retry_after, RETRY_AFTER_CAP))
    return Outcome(item.delivery_id, record, DeliveryStatus.PENDING, now + int(delay * 1000))


def after_redelivery(attempt: Attempt) -> Callable[[DeliveryStatus], DeliveryStatus | None]:
    """The redeliver policy: the status an extra, manual attempt leaves a delivery in, given
    its status when the result is written. A success ends it SUCCEEDED; a failure leaves a
    PENDING delivery on its retry schedule (None: unchanged) and any other FAILED."""

    def status(current: DeliveryStatus) -> DeliveryStatus | None:
        if attempt.succeeded:
            return DeliveryStatus.SUCCEEDED
        return None if current == DeliveryStatus.PENDING else DeliveryStatus.FAILED

    return status


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
        validation.host_of(item.url or ""),
        attempt.number,
        attempt.response_status,
        attempt.duration_ms,
        attempt.error,
    )


def body_of(item: Outgoing) -> bytes:
    """The body stored at publish; events stored before bodies were kept get theirs built
    from their data, the same way."""
    if item.payload is not None:
        return item.payload.encode()
    return payload(item.event, json.loads(item.data), item.occurred_at)


class Dispatcher:
    """Claims due deliveries, sends them and records their results: the delivery loop of one
    server process (not to be confused with the --workers processes, each of which runs one)."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        db: Db,
        schedule: tuple[float, ...],
        timeout: float,
        concurrency: int = 64,
        default_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        self._store = store
        self._sender = sender
        self._db = db
        self._schedule = schedule
        # A webhook's maximum in flight when its settings give none (Limits.default_concurrency:
        # the Store's claims are given the same).
        self._default_concurrency = default_concurrency
        # A lease outlasts the attempt by this margin; a webhook's longer timeout extends it.
        self._timeout_ms = int(timeout * 1000)
        self._lease_ms = self._timeout_ms + LEASE_MARGIN_MS
        self._concurrency = concurrency
        # Each webhook's window: how many of its attempts may be in flight in this process.
        self.pacer = aimd.Pacer()
        self.owner = f"dispatcher-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._stopping = False
        # A slot is held from the claim until the attempt's result is written: with
        # --workers N, freeing it earlier let the process receiving the publishes (woken by
        # them) claim nearly every delivery before the other workers' polls saw any.
        self._held: Counter[str] = Counter()
        self._sending: dict[str, asyncio.Task[None]] = {}
        # Finished attempts whose results are not written yet (None: the webhook is gone or
        # disabled, the delivery is cancelled unsent).
        self._done: list[tuple[Outgoing, Outcome | None]] = []
        self._unstarted: list[str] = []  # claimed while stopping: handed back
        self._every_turn_at = 0.0  # loop time of the next round with every_turn
        self._loop: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Claims at once instead of at the next poll: called after a publish commits."""
        self._wake.set()

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run())

    async def stop(self, grace: float) -> None:
        """Stops claiming, lets in-flight attempts finish within `grace`, records what
        finished (trying again until `grace` runs out), and hands back the leases of what did
        not finish."""
        deadline = asyncio.get_running_loop().time() + grace
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            # It ends after its current round (a database call, bounded by its timeout).
            await asyncio.gather(self._loop, return_exceptions=True)
        unfinished: list[str] = []
        if self._sending:
            _, late = await asyncio.wait(self._sending.values(), timeout=grace)
            unfinished = [key for key, task in self._sending.items() if task in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        delay = RETRY_FIRST
        while not await self._round(claim=False):
            if asyncio.get_running_loop().time() + delay > deadline:
                # Out of time: these rows keep their leases, and go out again when those
                # expire, as a killed process's would.
                log.error("%d delivery results could not be written before exit", len(self._done))
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_CAP)
        if unfinished or self._unstarted:
            await self._db(self._store.release, self.owner, unfinished + self._unstarted)

    async def _run(self) -> None:
        delay = RETRY_FIRST
        while not self._stopping:
            # Cleared before the round, so a publish or an attempt that ends while the round
            # runs is not missed: the wait below then returns at once.
            self._wake.clear()
            if await self._round(claim=True):
                delay = RETRY_FIRST
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL)
            else:
                # Not woken early by finishing attempts: the database needs the pause.
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP)

    async def _round(self, claim: bool) -> bool:
        """One transaction: the results of the attempts that ended since the last round (all
        of them, however many: results are group-committed), then a claim for the slots
        those results free and any others free. False when it failed: the results are then
        kept, with their slots and leases, for the next round, on a fresh connection."""
        batch, self._done = self._done, []
        freed = Counter(item.webhook_id for item, _ in batch)
        held = self._held - freed
        free = self._concurrency - sum(held.values()) if claim else 0
        if not batch and free <= 0:
            return True
        outcomes = [outcome for _, outcome in batch if outcome is not None]
        cancelled = [item.delivery_id for item, outcome in batch if outcome is None]
        now = asyncio.get_running_loop().time()
        every_turn = claim and now >= self._every_turn_at
        claimed: list[Outgoing] = []
        try:
            claimed = await self._db(
                self._store.exchange,
                outcomes,
                cancelled,
                self.owner,
                now_ms(),
                self._lease_ms,
                free,
                lambda hook, maximum: self.pacer.allowed(hook, maximum) - held[hook],
                self._timeout_ms,
                every_turn,
            )
        except Unavailable as e:
            self._done[:0] = batch
            log.warning("writing %d delivery results and claiming failed: %s", len(batch), e)
            return False
        except Exception:
            # Not the database being away: a bug, which trying again would only repeat.
            log.exception("writing %d delivery results and claiming failed", len(batch))
        if every_turn:
            self._every_turn_at = now + EVERY_TURN_INTERVAL
        self._held -= freed
        retries = [o.next_attempt_timestamp for o in outcomes if o.next_attempt_timestamp]
        if retries:
            # Claim again when the earliest retry is due rather than at the next poll.
            delay = max(0.0, (min(retries) - now_ms()) / 1000)
            asyncio.get_running_loop().call_later(delay, self._wake.set)
        for item in claimed:
            if self._stopping:
                self._unstarted.append(item.delivery_id)
            else:
                self._start(item)
        return True

    def _start(self, item: Outgoing) -> None:
        self._held[item.webhook_id] += 1
        task = asyncio.create_task(self._deliver(item))
        self._sending[item.delivery_id] = task
        task.add_done_callback(lambda _: self._sending.pop(item.delivery_id, None))

    def forget(self, webhook_id: str) -> None:
        """Drops a deleted webhook's window (and so its series in /metrics)."""
        self.pacer.forget(webhook_id)

    async def _deliver(self, item: Outgoing) -> None:
        outcome = None
        if item.url is None:
            self.forget(item.webhook_id)  # deleted, maybe by another process
        elif item.webhook_active:
            maximum = item.settings.concurrency(self._default_concurrency)
            sent = self.pacer.sending(item.webhook_id, maximum)
            attempt = await self._sender.send(
                item.url, item.secrets, item.delivery_id, body_of(item), item.settings.timeout
            )
            signal = aimd.signal_of(attempt.status, attempt.timed_out)
            self.pacer.answered(item.webhook_id, sent, signal, maximum)
            outcome = decide(item, attempt, item.settings.schedule(self._schedule), now_ms())
            observed(item, outcome)
        self._done.append((item, outcome))
        self._wake.set()
