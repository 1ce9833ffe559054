"""The operations of the service. Everything a call means is decided here, once, for both
transports: inputs are plain Python values, results are store records, failures are
server.errors exceptions."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from mlflow_webhooks.server import egress, events, filters, observe, validation
from mlflow_webhooks.server.config import Config
from mlflow_webhooks.server.delivery import settings as delivery_settings
from mlflow_webhooks.server.delivery.dispatcher import (
    OUTCOME_NAMES,
    after_redelivery,
    attempt_record,
    body_of,
    decide,
    observed,
)
from mlflow_webhooks.server.delivery.sender import Attempt, Sender, iso_now, payload
from mlflow_webhooks.server.errors import AlreadyExists, InvalidArgument, NotFound, Unavailable
from mlflow_webhooks.server.group_commit import GroupCommit
from mlflow_webhooks.server.store import (
    DatabaseUnavailable,
    DeliveryRecord,
    DeliveryStatus,
    DiskFull,
    EventRecord,
    Health,
    Outcome,
    Outgoing,
    Page,
    Store,
    WebhookRecord,
    WebhookStatus,
    WriteLockBusy,
    now_ms,
    time_ordered_id,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

HEALTH_WINDOW_MS = 24 * 3600 * 1000
# Bulk redelivery sends at most this many at once: they all go to the same receiver, which
# may be the one that was failing (the delivery worker's window starts at 4 for the same
# reason, server/delivery/aimd.py).
REDELIVER_CONCURRENCY = 8
# getWebhookHealth takes its ids in the query string over REST: 100 ids keep the URL far
# below the 8 KiB request line HTTP servers accept.
MAX_HEALTH_IDS = 100


def required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(
            f"Missing value for required parameter '{field}'. "
            "See the API docs for more information about request parameters."
        )
    return value


def not_found(webhook_id: str) -> NotFound:
    return NotFound(f"Webhook with ID {webhook_id} not found.")


# peewee is synchronous: its calls run in threads, so the event loop never waits on SQL, and
# each thread keeps a connection. Reads and writes have threads of their own, so writes
# blocked on a lock (up to --db-timeout) never hold up reads that do not need it; the health
# probe has its own, so it answers whatever the others wait on.
READ_THREADS = 8
WRITE_THREADS = 4
# SQLite takes one writer at a time, so one thread writes: its connection's page cache then
# stays valid from one transaction to the next (SQLite drops a connection's cache whenever
# another connection has written since), where four connections taking turns read back
# from the file the pages each other wrote.
SQLITE_WRITE_THREADS = 1
# Batched writes commit on the event loop when SQLite's lock is free (Store.run_at_once),
# skipping SQLite's automatic checkpoints there: the write thread checkpoints once the
# write-ahead log holds this much, SQLite's own threshold (1,000 pages of 4 KiB).
CHECKPOINT_BYTES = 4 * 1024 * 1024
CONNECTIONS = READ_THREADS + WRITE_THREADS + 1
UNAVAILABLE = "The database is not answering right now; retry the call shortly."


class WebhookCore:
    def __init__(self, config: Config, store: Store, sender: Sender) -> None:
        self._config = config
        self._store = store
        self._sender = sender
        self._egress = egress.Policy.of(config.allow_private_urls, config.egress_allow)
        self._reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="db-read")
        self._writes = ThreadPoolExecutor(
            SQLITE_WRITE_THREADS if store.is_sqlite else WRITE_THREADS,
            thread_name_prefix="db-write",
        )
        self._probe = ThreadPoolExecutor(1, thread_name_prefix="db-probe")
        # Called after a publish commits deliveries; the app points it at the dispatcher's
        # wake-up, so a new event does not wait for the next poll.
        self.on_published: Callable[[], None] = lambda: None
        # Called with the id of a webhook this process deleted: the app points it at the
        # dispatcher, which drops the webhook's adaptive window.
        self.on_deleted: Callable[[str], None] = lambda _: None
        # Concurrent publishes share one write transaction (see server/group_commit.py).
        self._publishes: GroupCommit[EventRecord, tuple[str, list[str]]] = GroupCommit(
            self._publish_batch
        )
        self._checkpoint: asyncio.Future[None] | None = None

    def close(self) -> None:
        # A probe stuck on an unreachable database is not waited for.
        self._probe.shutdown(wait=False, cancel_futures=True)
        for pool in (self._reads, self._writes):
            pool.shutdown(wait=True)

    async def db(self, fn: Callable[..., T], *args: object) -> T:
        """Runs a store method that may write, within --db-timeout of now."""
        return await self._call(self._writes, time.monotonic(), fn, *args)

    async def batch_write(
        self, fn: Callable[..., T], *args: object, since: float | None = None
    ) -> T:
        """Runs a store method that writes a batch in ONE transaction (a group commit's
        publishes, the delivery worker's round), within --db-timeout of `since` (default
        now). On SQLite it runs right here on the event loop when the write lock is free at
        once: these writes come many times a second, and handing each to the write thread
        and back cost more than the transaction itself (docs/benchmarks.md). When the lock
        is taken it goes to the write thread, which waits for it, as every other write."""
        since = time.monotonic() if since is None else since
        if self._store.is_sqlite:
            try:
                result = self._store.run_at_once(fn, *args)
            except WriteLockBusy:
                pass
            except DatabaseUnavailable as e:
                raise _unavailable(fn, e) from None
            else:
                self._checkpoint_now_and_then()
                return result
        return await self._call(self._writes, since, fn, *args)

    def _checkpoint_now_and_then(self) -> None:
        if self._store.log_bytes() < CHECKPOINT_BYTES:
            return
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        self._checkpoint = asyncio.ensure_future(self.db(self._store.checkpoint))
        self._checkpoint.add_done_callback(_log_checkpoint)

    async def read(self, fn: Callable[..., T], *args: object) -> T:
        """A point read (one row, one page). On SQLite it runs right here on the event loop:
        in WAL mode a reader never waits for a writer, and the hop to the pool and back
        cost more than the read itself (docs/benchmarks.md). PostgreSQL reads wait on the
        network, so they go to the read threads."""
        if not self._store.is_sqlite:
            return await self._call(self._reads, time.monotonic(), fn, *args)
        try:
            return self._store.run(None, fn, *args)
        except DatabaseUnavailable as e:
            raise _unavailable(fn, e) from None

    async def ping(self, bound: float) -> None:
        """The health probe (Store.ping) within `bound` seconds, on a thread of its own."""
        deadline = time.monotonic() + bound
        await asyncio.get_running_loop().run_in_executor(
            self._probe, self._store.run, deadline, self._store.ping
        )

    async def _call(
        self, pool: ThreadPoolExecutor, since: float, fn: Callable[..., T], *args: object
    ) -> T:
        """Runs `fn` in `pool`, giving up on the database --db-timeout after `since`
        (time.monotonic()); a database that cannot answer is UNAVAILABLE to the caller."""
        deadline = since + self._config.db_timeout
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, self._store.run, deadline, fn, *args
            )
        except DatabaseUnavailable as e:
            raise _unavailable(fn, e) from None

    async def _url(self, url: str) -> str:
        try:
            return await validation.url(url, self._config.allowed_schemes, self._egress)
        except validation.EgressRefused as e:
            observe.record_refusal(e.rule, "create")
            raise

    async def create_webhook(
        self,
        name: str,
        url: str,
        event_pairs: Sequence[tuple[int, int]],
        description: str | None = None,
        secret: str | None = None,
        status: int | None = None,
    ) -> WebhookRecord:
        record_name = validation.name(required(name, "name"))
        checked_events = validation.event_list(event_pairs)
        record_url = await self._url(required(url, "url"))
        now = now_ms()
        record = WebhookRecord(
            id=str(uuid.uuid4()),
            name=record_name,
            url=record_url,
            events=checked_events,
            description=validation.description(description) if description else None,
            secret=validation.secret(secret) if secret else None,
            status=status or WebhookStatus.ACTIVE,
            creation_timestamp=now,
            last_updated_timestamp=now,
        )
        return await self.db(self._store.create_webhook, record)

    async def get_webhook(self, webhook_id: str) -> WebhookRecord:
        record = await self.read(self._store.get_webhook, required(webhook_id, "webhook_id"))
        if record is None:
            raise not_found(webhook_id)
        return record

    async def list_webhooks(self, max_results: int, page_token: str) -> Page:
        return await self.read(
            self._store.list_webhooks, validation.page_size(max_results), page_token or None
        )

    async def update_webhook(
        self,
        webhook_id: str,
        name: str = "",
        url: str = "",
        event_pairs: Sequence[tuple[int, int]] = (),
        description: str | None = None,
        secret: str | None = None,
        status: int | None = None,
    ) -> WebhookRecord:
        """Partial update: empty name/url/events and None description/secret/status keep the
        stored value; an empty secret turns signing off."""
        required(webhook_id, "webhook_id")
        changes: dict[str, object] = {}
        if name:
            changes["name"] = validation.name(name)
        if event_pairs:
            changes["events"] = validation.event_list(event_pairs)
        if description is not None:
            changes["description"] = validation.description(description) or None
        if secret is not None:
            changes["secret"] = validation.secret(secret) or None
        if status is not None:
            changes["status"] = status
        if url:
            changes["url"] = await self._url(url)
        updated = await self.db(
            self._store.update_webhook, webhook_id, lambda r: replace(r, **changes)
        )
        if updated is None:
            raise not_found(webhook_id)
        return updated

    async def rotate_webhook_secret(
        self, webhook_id: str, secret: str, overlap_seconds: int
    ) -> tuple[WebhookRecord, str | None]:
        """Replaces the webhook's secret with `secret`, or with a generated one when it is
        empty; the old one signs deliveries too for `overlap_seconds`, then is forgotten.
        Answers the webhook and the generated secret (None when one was given): the only time
        the service ever returns a secret."""
        required(webhook_id, "webhook_id")
        overlap = validation.overlap_seconds(overlap_seconds)
        generated = None if secret else secrets.token_urlsafe(32)
        new = generated or validation.secret(secret)
        until = now_ms() + overlap * 1000 if overlap else None
        rotated = await self.db(self._store.rotate_secret, webhook_id, new, until)
        if rotated is None:
            raise not_found(webhook_id)
        return rotated, generated

    async def delete_webhook(self, webhook_id: str) -> None:
        if not await self.db(self._store.delete_webhook, required(webhook_id, "webhook_id")):
            raise not_found(webhook_id)
        self.on_deleted(webhook_id)

    async def set_webhook_filter(
        self,
        webhook_id: str,
        names: Sequence[str] = (),
        aliases: Sequence[str] = (),
        tag_keys: Sequence[str] = (),
    ) -> filters.Filter:
        """Stores a webhook's filter; an empty one removes it."""
        required(webhook_id, "webhook_id")
        spec = filters.validated(list(names), list(aliases), list(tag_keys))
        if not await self.db(self._store.set_filter, webhook_id, spec):
            raise not_found(webhook_id)
        return spec

    async def get_webhook_filter(self, webhook_id: str) -> filters.Filter:
        found = await self.read(self._store.get_filter, required(webhook_id, "webhook_id"))
        if found is None:
            raise not_found(webhook_id)
        return found

    async def set_delivery_settings(
        self,
        webhook_id: str,
        retry_schedule: Sequence[float] | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        ordered: bool | None = None,
    ) -> delivery_settings.DeliverySettings:
        """Changes the parts of a webhook's delivery settings given (None keeps the stored
        one), within the operator's limits, and answers them all."""
        required(webhook_id, "webhook_id")
        change = delivery_settings.change(
            retry_schedule, timeout, max_concurrency, self._config.limits, ordered
        )
        found = await self.db(self._store.change_delivery_settings, webhook_id, change)
        if found is None:
            raise not_found(webhook_id)
        return found

    async def get_delivery_settings(self, webhook_id: str) -> delivery_settings.DeliverySettings:
        found = await self.read(
            self._store.get_delivery_settings, required(webhook_id, "webhook_id")
        )
        if found is None:
            raise not_found(webhook_id)
        return found

    async def test_webhook(
        self, webhook_id: str, event: tuple[int, int] | None
    ) -> tuple[Attempt, str | None]:
        """Sends the example payload of `event` (default: the webhook's first) once, now,
        whatever the webhook's status, and logs it as a test delivery. Also answers, when the
        webhook's filter would leave a published event like the example out, why: the test
        is sent all the same, since it checks the receiver, not the filter."""
        found = await self.read(self._store.webhook_to_test, required(webhook_id, "webhook_id"))
        if found is None:
            raise not_found(webhook_id)
        webhook, spec, settings = found
        chosen = validation.event(*event) if event is not None else webhook.events[0]
        example = events.EVENTS[chosen].example
        why = spec.why_not(example)
        filtered = (
            None
            if why is None
            else "The webhook's filter would leave a published event like this example out, "
            f"so it would make no delivery: {why}. The test was sent all the same."
        )
        record = _event_record(chosen, example, None)
        delivery_id = time_ordered_id()
        assert record.payload is not None  # _event_record always makes it
        body = record.payload.encode()
        attempt = await self._sender.send(
            webhook.url, webhook.secrets, delivery_id, body, settings.timeout
        )
        status = DeliveryStatus.SUCCEEDED if attempt.succeeded else DeliveryStatus.FAILED
        outcome = Outcome(delivery_id, attempt_record(1, attempt), status, None)
        observe.record_attempt(
            "test",
            delivery_id,
            webhook.id,
            validation.host_of(webhook.url),
            1,
            attempt.status,
            attempt.duration_ms,
            attempt.error,
        )
        await self.db(self._store.record_test, record, webhook.id, delivery_id, outcome)
        return attempt, filtered

    # -- events and deliveries -----------------------------------------------------------

    async def publish_event(
        self, event: tuple[int, int], data: object, idempotency_key: str
    ) -> tuple[str, list[str]]:
        checked = validation.event(*event)
        record = _event_record(
            checked,
            validation.event_data(checked, data),
            validation.idempotency_key(idempotency_key) or None,
        )
        assert record.payload is not None  # _event_record always makes it
        size = len(record.payload.encode())
        if size > self._config.max_request_bytes:
            raise InvalidArgument(
                f"The event is {size} bytes as delivered; at most "
                f"{self._config.max_request_bytes} are allowed (--max-request-bytes)."
            )
        # Validated above, so a bad event never joins a batch and cannot fail the others.
        return await self._publishes.submit(record)

    async def _publish_batch(
        self, records: list[EventRecord]
    ) -> list[tuple[str, list[str]] | BaseException]:
        # A publish that queued behind blocked batches for its whole --db-timeout is answered
        # UNAVAILABLE unwritten; the others wait only for what is left of the oldest one's.
        now = now_ms()
        expired = now - int(self._config.db_timeout * 1000)
        fresh = [r for r in records if r.creation_timestamp > expired]
        written: dict[str, tuple[str, list[str]] | AlreadyExists] = {}
        if fresh:
            since = time.monotonic() - (now - min(r.creation_timestamp for r in fresh)) / 1000
            published = await self.batch_write(self._store.publish_many, fresh, since=since)
            written = {r.id: result for r, result in zip(fresh, published, strict=True)}
            if any(not isinstance(p, Exception) and p[1] for p in published):
                self.on_published()
        return [written[r.id] if r.id in written else Unavailable(UNAVAILABLE) for r in records]

    async def list_deliveries(
        self,
        max_results: int,
        page_token: str,
        webhook_id: str = "",
        event_id: str = "",
        status: int = 0,
        event: tuple[int, int] | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> Page:
        """Newest first; `event`, `since` and `until` (Unix ms, [since, until)) are optional."""
        checked = validation.event(*event) if event is not None else None
        since, until = validation.time_range(since, until)
        return await self.read(
            self._store.list_deliveries,
            validation.page_size(max_results),
            page_token or None,
            webhook_id or None,
            event_id or None,
            status or None,
            checked,
            since,
            until,
        )

    def event_types(self) -> list[tuple[events.Event, str, list[str]]]:
        """Each valid event, its name ("model_version.created") and its data fields."""
        return [
            (event, f"{events.entity_name(event[0])}.{events.action_name(event[1])}", names)
            for event, spec in events.EVENTS.items()
            for names in [[f.name for f in spec.fields]]
        ]

    async def webhook_health(self, webhook_ids: Sequence[str]) -> list[Health]:
        if not webhook_ids:
            required("", "webhook_ids")
        if len(webhook_ids) > MAX_HEALTH_IDS:
            raise InvalidArgument(
                f"Ask for at most {MAX_HEALTH_IDS} webhook_ids at a time, got "
                f"{len(webhook_ids)}: one page of listWebhooks with max_results={MAX_HEALTH_IDS}."
            )
        # A read, but not a point read: its counts over 24 hours go to the read threads even
        # on SQLite, rather than run on the event loop as read() would.
        return await self._call(
            self._reads,
            time.monotonic(),
            self._store.webhook_health,
            list(webhook_ids),
            now_ms() - HEALTH_WINDOW_MS,
        )

    async def backlog(self) -> tuple[int, float]:
        """Pending deliveries, and the age in seconds of the oldest."""
        # A count over the whole backlog: the read threads, never the event loop.
        pending, oldest = await self._call(self._reads, time.monotonic(), self._store.backlog)
        return pending, (now_ms() - oldest) / 1000 if oldest is not None else 0.0

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord:
        found = await self.read(self._store.get_delivery, required(delivery_id, "delivery_id"))
        if found is None:
            raise NotFound(f"Delivery with ID {delivery_id} not found.")
        if found.payload is not None:
            return found
        # An event stored before bodies were kept: built as body_of() builds it to send it.
        sent = payload(found.event, json.loads(found.data or "{}"), found.occurred_at or "")
        return replace(found, payload=sent.decode())

    async def redeliver(self, delivery_id: str) -> DeliveryRecord:
        """One more attempt, now, with the same delivery id, outside the retry schedule (see
        after_redelivery)."""
        item = await self.read(self._store.outgoing, required(delivery_id, "delivery_id"))
        if item is None:
            raise NotFound(f"Delivery with ID {delivery_id} not found.")
        if item.url is None:
            raise NotFound(
                f"Webhook with ID {item.webhook_id} not found: a deleted webhook's deliveries "
                "cannot be sent again."
            )
        attempt = await self._sender.send(
            item.url, item.secrets, item.delivery_id, body_of(item), item.settings.timeout
        )
        written = await self.db(
            self._store.record_redelivery,
            item.delivery_id,
            attempt_record(0, attempt),  # numbered as it is logged
            after_redelivery(attempt),
            item.webhook_id if attempt.status == 410 else None,
            item.webhook_id if item.settings.ordered else None,
        )
        if written is None:
            raise NotFound(f"Delivery with ID {delivery_id} not found.")
        number, status = written
        observe.record_attempt(
            OUTCOME_NAMES.get(status, "failed"),
            item.delivery_id,
            item.webhook_id,
            validation.host_of(item.url),
            number,
            attempt.status,
            attempt.duration_ms,
            attempt.error,
        )
        return await self.get_delivery(delivery_id)

    async def redeliver_failed(
        self, webhook_id: str, since: int | None, max_deliveries: int, page_token: str
    ) -> tuple[list[Outcome], str | None]:
        """Sends the webhook's FAILED deliveries created since `since` again, oldest first, at
        most `max_deliveries`, each as redeliver() does; their results are written together.
        Answers the outcomes and the token of the next batch, if more remain."""
        webhook = await self.get_webhook(webhook_id)
        if since is None:
            required("", "since_timestamp")
        since, _ = validation.time_range(since, None)
        limit = validation.batch_size(max_deliveries, "max_deliveries")
        page = await self.db(
            self._store.failed_deliveries, webhook.id, since, limit, page_token or None
        )
        # An ordered webhook's receiver gets them one at a time, oldest first.
        ordered = any(item.settings.ordered for item in page.items)
        gate = asyncio.Semaphore(1 if ordered else REDELIVER_CONCURRENCY)

        async def one(item: Outgoing) -> Outcome:
            async with gate:
                return await self._send_again(item)

        # A webhook deleted since get_webhook leaves nothing to send to.
        sendable = [item for item in page.items if item.url is not None]
        outcomes = list(await asyncio.gather(*(one(item) for item in sendable)))
        await self.db(self._store.record, outcomes)
        return outcomes, page.next_token

    async def _send_again(self, item: Outgoing) -> Outcome:
        """One manual attempt of a stored delivery: sent, decided, logged and counted as the
        worker's attempts are; the caller records it."""
        assert item.url is not None
        attempt = await self._sender.send(
            item.url, item.secrets, item.delivery_id, body_of(item), item.settings.timeout
        )
        outcome = decide(item, attempt, (), now_ms())
        observed(item, outcome)
        return outcome


def _unavailable(fn: Callable[..., object], error: Exception) -> Unavailable:
    if isinstance(error, DiskFull):
        log.error("%s failed: %s", getattr(fn, "__name__", fn), error)
        return Unavailable(
            "The service's storage is full, so nothing can be stored now; retry once its "
            "operator has freed space."
        )
    log.warning("database unavailable in %s: %s", getattr(fn, "__name__", fn), error)
    return Unavailable(UNAVAILABLE)


def _log_checkpoint(done: asyncio.Future[None]) -> None:
    """A checkpoint that failed is tried again after the next batch write; the database
    being away was logged by db() already."""
    error = None if done.cancelled() else done.exception()
    if error is not None and not isinstance(error, Unavailable):
        log.error("checkpointing the SQLite write-ahead log failed: %s", error)


def _event_record(
    event: events.Event, data: dict[str, object], idempotency_key: str | None
) -> EventRecord:
    """The event as stored, with the body every attempt will send, made here once (the
    signature of each attempt is computed over exactly these bytes)."""
    occurred_at = iso_now()
    return EventRecord(
        id=time_ordered_id(),
        event=event,
        data=json.dumps(data),
        occurred_at=occurred_at,
        creation_timestamp=now_ms(),
        idempotency_key=idempotency_key,
        payload=payload(event, data, occurred_at).decode(),
    )
