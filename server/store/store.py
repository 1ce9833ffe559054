"""The store: every SQL statement the service runs, behind plain methods and dataclasses.

Methods are synchronous (peewee is); the core calls them from a thread pool. Each method is
one short transaction."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import peewee as pw
from playhouse.migrate import SchemaMigrator, migrate

from mlflow_webhooks.server import filters, ordering
from mlflow_webhooks.server.delivery import settings as delivery_settings
from mlflow_webhooks.server.delivery.signing import Secrets
from mlflow_webhooks.server.errors import AlreadyExists, InvalidArgument
from mlflow_webhooks.server.events import Event
from mlflow_webhooks.server.store import models as m
from mlflow_webhooks.server.store.connection import (
    DEFAULT_TIMEOUT,
    DatabaseTimeout,
    DatabaseUnavailable,
    WriteLockBusy,
    is_busy,
    open_database,
    sqlite_path,
    unmasked,
)
from mlflow_webhooks.server.store.models import DeliveryStatus, WebhookStatus
from mlflow_webhooks.server.store.pagination import decode_cursor, encode_cursor, keyset_page
from mlflow_webhooks.server.store.records import (
    AttemptRecord,
    DeliveryRecord,
    EventRecord,
    Health,
    Outcome,
    Outgoing,
    Page,
    Pruned,
    Published,
    WebhookRecord,
    now_ms,
    time_ordered_id,
)
from mlflow_webhooks.server.store.secrets import open_box

T = TypeVar("T")
SCHEMA_VERSION = max(m.TABLES_BY_VERSION)
# A call that waited this much less than its full timeout before it reached the database
# gets what is left of it (one more statement on PostgreSQL, so only when it matters).
SHORTENED = 0.1
IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
RESPONSE_BODY_LOGGED = 4096

# The hot path's statements, with `?` placeholders (see Store._sql). Identifiers are quoted
# as peewee quotes them, so they mean the same tables on SQLite and PostgreSQL.
ONE_WEBHOOK_COLUMNS = (
    'w."id", w."name", w."description", w."url", w."secret_token", w."status", '
    'w."creation_timestamp", w."last_updated_timestamp", s."entity", s."action", '
    'w."previous_secret_token", w."previous_secret_until"'
)
ONE_WEBHOOK_FROM = (
    'FROM "webhooks" AS w LEFT OUTER JOIN "webhook_events" AS s ON s."webhook_id" = w."id" '
    'WHERE w."id" = ? ORDER BY s."position"'
)
ONE_WEBHOOK = f"SELECT {ONE_WEBHOOK_COLUMNS} {ONE_WEBHOOK_FROM}"
# testWebhook's read: the webhook with its filter and delivery settings, in one statement.
WEBHOOK_TO_TEST = (
    f'SELECT {ONE_WEBHOOK_COLUMNS}, w."filter_spec", w."delivery_settings" {ONE_WEBHOOK_FROM}'
)
INSERT_EVENTS = (
    'INSERT INTO "events" ("id", "entity", "action", "data", "occurred_at", '
    '"idempotency_key", "creation_timestamp", "payload", "idempotency_hash") VALUES '
)
SUBSCRIBERS = (
    'SELECT w."id", w."filter_spec", w."delivery_settings" FROM "webhooks" AS w '
    'JOIN "webhook_events" AS s ON s."webhook_id" = w."id" '
    'WHERE s."entity" = ? AND s."action" = ? AND w."status" = ?'
)
INSERT_DELIVERIES = (
    'INSERT INTO "deliveries" ("id", "event_id", "webhook_id", "status", "attempt_count", '
    '"next_attempt_timestamp", "is_test", "creation_timestamp", "sequence") VALUES '
)
DELIVERY_COLUMNS = 9
# Ordered webhooks (server/ordering.py). Numbering a publish's deliveries to one takes the
# webhook's row (on PostgreSQL a row lock, held to the commit), as does writing a result that
# passes its turn on, so the two take turns: the numbers follow the order publishes commit
# in, and no turn is passed while a delivery it should reach is being committed. Unordered
# webhooks' rows are never taken.
NEXT_SEQUENCES = (
    'UPDATE "webhooks" SET "last_sequence" = "last_sequence" + ? WHERE "id" = ? '
    'RETURNING "last_sequence", "delivery_settings"'
)
ANY_PENDING = 'SELECT 1 FROM "deliveries" WHERE "status" = ? AND "webhook_id" = ? LIMIT 1'
TAKE_WEBHOOKS = 'SELECT "id" FROM "webhooks" WHERE "id" IN {ids} ORDER BY "id" FOR NO KEY UPDATE'
# The statements on waiting deliveries say {waiting} where models.WAITING goes, and read them
# through {waiting_index} (see Store.__init__).
#
# Gives a webhook's first waiting delivery its turn (a next attempt: now) when none of its
# deliveries is out or due. One statement: passes running at once (replicas) can only pick
# the same row, and a row given its turn meanwhile is no longer waiting when this one writes.
NEXT_TURN = (
    'UPDATE "deliveries" SET "next_attempt_timestamp" = ? WHERE "id" = ('
    'SELECT "id" FROM "deliveries"{waiting_index} WHERE {waiting} AND "webhook_id" = ? '
    'ORDER BY "sequence" LIMIT 1) AND {waiting} AND NOT EXISTS ('
    'SELECT 1 FROM "deliveries" WHERE "status" = ? AND "webhook_id" = ? '
    'AND "next_attempt_timestamp" IS NOT NULL)'
)
# The webhooks with deliveries waiting their turn, one index seek each.
WAITING_WEBHOOKS = (
    'WITH RECURSIVE hooks("id") AS ('
    'SELECT MIN("webhook_id") FROM "deliveries"{waiting_index} WHERE {waiting} '
    'UNION ALL SELECT (SELECT MIN("webhook_id") FROM "deliveries"{waiting_index} '
    'WHERE {waiting} AND "webhook_id" > hooks."id") FROM hooks WHERE hooks."id" IS NOT NULL'
    ') SELECT "id" FROM hooks WHERE "id" IS NOT NULL'
)
STOP_WAITING = (
    'UPDATE "deliveries" SET "next_attempt_timestamp" = ? WHERE {waiting} AND "webhook_id" = ?'
)

DUE = (
    'SELECT "id", "webhook_id" FROM "deliveries" WHERE "status" = ? '
    'AND "next_attempt_timestamp" <= ? AND ("lease_until" IS NULL OR "lease_until" < ?)'
)
# The webhooks with PENDING rows, one index seek each (a skip scan of the status/webhook_id
# index), however many rows each has.
PENDING_WEBHOOKS = (
    'WITH RECURSIVE hooks("id") AS ('
    'SELECT MIN("webhook_id") FROM "deliveries" WHERE "status" = ? '
    'UNION ALL SELECT (SELECT MIN("webhook_id") FROM "deliveries" '
    'WHERE "status" = ? AND "webhook_id" > hooks."id") FROM hooks WHERE hooks."id" IS NOT NULL'
    ') SELECT "id" FROM hooks WHERE "id" IS NOT NULL'
)
# One webhook's oldest due rows: a range of the same index, read in next-attempt order.
DUE_OF_WEBHOOK = (
    'SELECT * FROM (SELECT "id", "webhook_id", "next_attempt_timestamp" FROM "deliveries" '
    'WHERE "status" = ? AND "webhook_id" = ? AND "next_attempt_timestamp" <= ? '
    'AND ("lease_until" IS NULL OR "lease_until" < ?) '
    'ORDER BY "next_attempt_timestamp" LIMIT ?) AS w{n}'
)
# PostgreSQL: of the rows a claim chose, the oldest it may still have, locked. Rows another
# replica locked meanwhile are skipped, and then the next chosen ones taken instead.
LOCK_CHOSEN = (
    'SELECT "id" FROM "deliveries" WHERE "status" = ? '
    'AND ("lease_until" IS NULL OR "lease_until" < ?) AND "id" IN {ids} '
    'ORDER BY "next_attempt_timestamp" LIMIT ? FOR UPDATE SKIP LOCKED'
)
# A claim reads at most this many due rows per free slot in next-attempt order; when busy
# webhooks' rows fill that window, it looks webhook by webhook instead.
CLAIM_WINDOW = 2
# The settings of the webhooks whose rows a claim considers, for their maximum concurrency:
# read in the claim's transaction, so a change applies from the next claim, in any process.
MAXIMA = (
    'SELECT "id", "delivery_settings" FROM "webhooks" '
    'WHERE "delivery_settings" IS NOT NULL AND "id" IN {ids}'
)
LEASE = 'UPDATE "deliveries" SET "lease_owner" = ?, "lease_until" = ? WHERE "id" IN '
OUTGOING = (
    'SELECT d."id", d."webhook_id", d."attempt_count", e."entity", e."action", e."data", '
    'e."occurred_at", e."payload", w."url", w."secret_token", w."status", d."manual_attempts", '
    'w."delivery_settings", w."previous_secret_token", w."previous_secret_until" '
    'FROM "deliveries" AS d '
    'JOIN "events" AS e ON e."id" = d."event_id" '
    'LEFT OUTER JOIN "webhooks" AS w ON w."id" = d."webhook_id" '
    'WHERE d."id" IN {ids} ORDER BY d."next_attempt_timestamp"'
)
INSERT_ATTEMPTS = (
    'INSERT INTO "delivery_attempts" ("delivery_id", "number", "timestamp", "duration_ms", '
    '"response_status", "response_body", "error") VALUES {rows} ON CONFLICT DO NOTHING'
)
# A delivery a redeliver made SUCCEEDED stays so, whatever its in-flight scheduled attempt
# comes to.
RESULT = (
    'UPDATE "deliveries" SET '
    '"status" = CASE WHEN "status" = ? THEN "status" ELSE ? END, '
    '"next_attempt_timestamp" = CASE WHEN "status" = ? THEN NULL ELSE CAST(? AS BIGINT) END, '
    '"attempt_count" = "attempt_count" + 1, "lease_owner" = NULL, "lease_until" = NULL '
    'WHERE "id" IN '
)
LAST_ATTEMPTS = (
    'SELECT "delivery_id", MAX("number") FROM "delivery_attempts" WHERE "delivery_id" IN {ids} '
    'GROUP BY "delivery_id"'
)
DELIVERY_STATUS = 'SELECT "status" FROM "deliveries" WHERE "id" = ?'
MANUAL_ATTEMPT = (
    'UPDATE "deliveries" SET "attempt_count" = "attempt_count" + 1, '
    '"manual_attempts" = "manual_attempts" + 1 WHERE "id" = ?'
)
SET_STATUS = 'UPDATE "deliveries" SET "status" = ?, "next_attempt_timestamp" = ? WHERE "id" = ?'


EVENT_COLUMNS = (
    "id",
    "entity",
    "action",
    "data",
    "occurred_at",
    "idempotency_key",
    "creation_timestamp",
    "payload",
    "idempotency_hash",
)


def _row(width: int) -> str:
    return "(" + ", ".join("?" * width) + ")"


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    """`items` in slices of at most `size`. (peewee's chunked zips `size` iterators, which
    for a batch of a few rows in chunks of 1,800 values cost a measurable part of the
    publish: docs/benchmarks.md.)"""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows(count: int, width: int) -> str:
    return ", ".join([_row(width)] * count)


# (webhook id, its maximum concurrency) -> the rows of it a claim may take
Room = Callable[[str, int], int]


class _Fit:
    """Which due rows one claim takes: at most `limit`, and no more of a webhook than
    room(webhook, its maximum concurrency) (when given; 0 or less for a busy webhook). It
    counts what it has handed out across calls, so rows another replica locked first can be
    given back and others taken."""

    def __init__(self, limit: int, room: Room | None, maxima: dict[str, int], default: int) -> None:
        self.limit = limit
        self._room = room
        self._maxima = maxima  # of the webhooks with settings; the rest have `default`
        self._default = default
        self._taken: Counter[str] = Counter()

    def room(self, webhook_id: str) -> int:
        if self._room is None:
            return self.limit
        maximum = self._maxima.get(webhook_id, self._default)
        return self._room(webhook_id, maximum)

    def take(self, due: Sequence[tuple[str, str]], cap: int) -> list[str]:
        """The ids of `due` (oldest first) that fit, at most `cap` of them."""
        ids: list[str] = []
        for delivery_id, webhook_id in due:
            if len(ids) == cap:
                break
            if self._taken[webhook_id] >= self.room(webhook_id):
                continue  # not leased: due again at the next claim, here or anywhere
            self._taken[webhook_id] += 1
            ids.append(delivery_id)
        return ids

    def give_back(self, rows: Sequence[tuple[str, str]]) -> None:
        """Rows taken but not had (another claim locked them first) free their room."""
        for _, webhook_id in rows:
            self._taken[webhook_id] -= 1


@functools.lru_cache(maxsize=256)
def _dialect(text: str, param: str) -> str:
    return text if param == "?" else text.replace("?", param)


def event_hash(kind: Event, data: str) -> str:
    """What an idempotency key is tied to: the event's entity, action and data, whatever the
    order of the data's keys."""
    canonical = json.dumps([*kind, json.loads(data)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _key_reused(key: str, event_id: str) -> AlreadyExists:
    return AlreadyExists(
        f"idempotency_key {key!r} was used within the last 24 hours for a different event "
        f"(event_id {event_id}); send that same event to get its answer again, or use a new "
        "key for a new event."
    )


class Store:
    def __init__(
        self,
        database_url: str,
        secret_key: str | None,
        connections: int = 16,
        timeout: float = DEFAULT_TIMEOUT,
        default_concurrency: int = delivery_settings.DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        path = sqlite_path(database_url)
        self.is_sqlite = path is not None
        self._path = None if path == ":memory:" else path
        self.timeout = timeout
        # A claim's maximum for a webhook whose settings give none (Limits.default_concurrency).
        self._default_concurrency = default_concurrency
        # SQLite has one writer at a time. This process's threads queue for it here rather
        # than in SQLite's busy handler, which polls with sleeps of up to 100 ms; never
        # longer than the timeout, so blocked writers cannot pile up behind it.
        self._writer = threading.RLock()
        # The deadline of the call this thread runs (see run()).
        self._call = threading.local()
        # Resolve the key first: a missing key is the clearer error, before any connection.
        self._box = open_box(secret_key, path)
        self.db: pw.Database = open_database(database_url, connections, timeout)
        m.database.initialize(self.db)
        # Secrets are decrypted on every claim; a token's plaintext never changes (a new
        # secret is a new token), so each token is decrypted once.
        self._secret = functools.lru_cache(maxsize=4096)(self._box.open)
        # SQLite is told to read waiting deliveries through their index: with statistics
        # (ANALYZE) its planner may prefer the status/webhook index and sort the backlog.
        waiting = {"waiting": m.WAITING, "waiting_index": ""}
        if self.is_sqlite:
            waiting["waiting_index"] = f' INDEXED BY "{m.WAITING_INDEX}"'
        self._next_turn_sql = NEXT_TURN.format(**waiting)
        self._waiting_webhooks = WAITING_WEBHOOKS.format(**waiting)
        self._stop_waiting = STOP_WAITING.format(**waiting)

    def _sql(self, text: str, params: Sequence[object] = ()) -> Any:
        """Runs a statement written with `?` placeholders, in this database's style. The hot
        path's statements are written out: peewee composing them cost more than running
        them (docs/benchmarks.md)."""
        return self.db.execute_sql(_dialect(text, self.db.param), params)

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Creates or migrates the schema, then proves the key opens the stored secrets."""
        with self._write():
            if isinstance(self.db, pw.PostgresqlDatabase):
                # Replicas starting together take turns creating and migrating the schema.
                # Waiting for another replica's migration, or building an index on a large
                # table, may take longer than --db-timeout, which is for calls.
                self.db.execute_sql(
                    "SELECT set_config('lock_timeout', '0', true), "
                    "set_config('statement_timeout', '0', true)"
                )
                self.db.execute_sql("SELECT pg_advisory_xact_lock(8675309)")
            self.db.create_tables(m.TABLES_BY_VERSION[1], safe=True)
            row = m.SchemaVersion.select().first() or m.SchemaVersion.create(version=0)
            if row.version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database has schema version {row.version}, newer than this server's "
                    f"{SCHEMA_VERSION}: run a newer server"
                )
            # Each version adds tables, indexes or columns; one that changes columns would add
            # its playhouse.migrate operations here. Columns go first: a version's new index
            # may be on its new column.
            for version in range(row.version + 1, SCHEMA_VERSION + 1):
                self._add_columns(m.COLUMNS_BY_VERSION.get(version, []))
                self.db.create_tables(m.TABLES_BY_VERSION[version], safe=True)
            m.SchemaVersion.update(version=SCHEMA_VERSION).execute()
        sample = (
            m.Webhook.select(m.Webhook.secret_token)
            .where(m.Webhook.secret_token.is_null(False))
            .first()
        )
        if sample is not None:
            self._box.open(sample.secret_token)
        self._box.save()

    def _add_columns(self, fields: list[pw.Field]) -> None:
        """Adds each field's column unless its table already has it (a table made by this
        version's models has it from the start). A NOT NULL column comes with its SQL
        DEFAULT in one ALTER TABLE: playhouse would otherwise rebuild an SQLite table to add
        the NOT NULL, and dropping the old table, inside this transaction where foreign keys
        cannot be turned off, would delete the rows that cascade from it."""
        migrator = SchemaMigrator.from_database(self.db)
        for model_field in fields:
            table = model_field.model._meta.table_name
            if model_field.column_name not in {c.name for c in self.db.get_columns(table)}:
                add = migrator.add_column(
                    table, model_field.column_name, model_field, allow_not_null=True
                )
                migrate(add)

    def close(self) -> None:
        self.db.close()

    def run(self, deadline: float | None, fn: Callable[..., T], *args: object) -> T:
        """Calls a store method in this thread, within `deadline` (time.monotonic()) when one
        is given: a call that queued for a thread past it is refused unrun, and one that
        queued part of it waits on locks only for what is left. When the database drops the
        connection (a restart, a failover), it is closed, so this thread's next call opens a
        fresh one instead of failing for ever."""
        if deadline is not None and time.monotonic() >= deadline:
            raise DatabaseTimeout(
                f"no database connection was free within {self.timeout:g} s (--db-timeout)"
            )
        self._call.deadline = deadline
        try:
            return fn(*args)
        except DatabaseUnavailable:
            if not self.db.is_closed():
                self.db.close()
            raise
        finally:
            self._call.deadline = None

    def run_at_once(self, fn: Callable[..., T], *args: object) -> T:
        """SQLite: runs `fn`, a store method of ONE write transaction, in this thread if the
        write lock is free at once, and raises WriteLockBusy, with nothing written, when this
        process's write thread or another process holds it. The core runs its batched writes
        so on the event loop: handing them to the write thread and back cost more than the
        transaction (docs/benchmarks.md). This thread's connection leaves checkpoints to
        checkpoint(), which the core runs on the write thread: a checkpoint syncs the
        database file to disk, which the event loop must not wait for."""
        connection = self.db.connection()
        if getattr(self._call, "without_checkpoints", None) is not connection:
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            self._call.without_checkpoints = connection  # a reopened connection needs it again
        self._call.at_once = True
        try:
            return self.run(None, fn, *args)
        finally:
            self._call.at_once = False

    def checkpoint(self) -> None:
        """Copies the write-ahead log into the database file as far as no reader needs it
        (SQLite's PASSIVE checkpoint), so the log does not grow while the writes run_at_once
        commits skip SQLite's automatic checkpoints. SQLite starts the log over at the next
        write only once everything in it is copied, so a second pass copies what was
        written during the first while this process's writes are held off, as an automatic
        checkpoint holds them: only for the little the first pass left."""
        self.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
        self._take_writer()
        try:
            self.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._writer.release()

    def log_bytes(self) -> int:
        """The size of SQLite's write-ahead log file: what it holds since it last started
        over, once past its journal_size_limit (server/store/connection.py)."""
        try:
            return os.stat(f"{self._path}-wal").st_size if self._path else 0
        except FileNotFoundError:
            return 0

    def _take_writer(self) -> None:
        """This process's turn at SQLite's write lock, within the call's time left."""
        if not self._writer.acquire(timeout=max(0.0, self._left())):
            raise DatabaseTimeout(
                f"the database's write lock was busy for {self.timeout:g} s (--db-timeout)"
            )

    def _left(self) -> float:
        """Seconds this thread's call may still wait on the database."""
        deadline = getattr(self._call, "deadline", None)
        return self.timeout if deadline is None else min(self.timeout, deadline - time.monotonic())

    @contextmanager
    def _write(self) -> Iterator[None]:
        """A write transaction that waits for its locks no longer than the call's time left."""
        if not self.is_sqlite:
            with self.db.atomic():
                left = self._left()
                if left < self.timeout - SHORTENED:
                    ms = f"{max(1, int(left * 1000))}ms"
                    self.db.execute_sql(
                        "SELECT set_config('lock_timeout', %s, true), "
                        "set_config('statement_timeout', %s, true)",
                        (ms, ms),
                    )
                yield
            return
        at_once = getattr(self._call, "at_once", False)
        if at_once:
            if not self._writer.acquire(blocking=False):
                raise WriteLockBusy("this process's write thread holds the write lock")
        else:
            self._take_writer()
        left = 0.0 if at_once else self._left()
        shortened = left < self.timeout - SHORTENED
        try:
            if shortened:  # the busy timeout covers what is left after this process's queue
                self._busy_timeout(left)
            # SQLite upgrades a read lock to a write lock lazily, and a busy upgrade fails at
            # once instead of waiting; taking the write lock up front lets the busy timeout
            # do its job.
            try:
                with self.db.atomic("IMMEDIATE"):
                    yield
            except pw.OperationalError as e:
                if at_once and is_busy(e):
                    # Another process holds the lock; the transaction rolled back.
                    raise WriteLockBusy("another process holds the write lock") from None
                cause = unmasked(e)
                if cause is e:
                    raise
                raise cause from None
        finally:
            if shortened and not self.db.is_closed():
                self._busy_timeout(self.timeout)
            self._writer.release()

    def _busy_timeout(self, seconds: float) -> None:
        """0: no wait at all (run_at_once); otherwise at least 1 ms."""
        ms = 0 if seconds == 0 else max(1, int(seconds * 1000))
        self.db.connection().execute(f"PRAGMA busy_timeout = {ms}")

    def ping(self) -> None:
        """The health probe: proves, within the call's deadline, that the database answers
        and that the tables every write needs can be written: a write lock held elsewhere
        (SQLite's, or on PostgreSQL a lock on one of the tables) fails it."""
        if self.is_sqlite:
            with self._write():
                return
        for model in (m.Webhook, m.Subscription, m.Event, m.Delivery, m.Attempt):
            # ROW EXCLUSIVE is what every INSERT and UPDATE takes: it waits only on locks that
            # would block those, and blocks nobody. One table per transaction: holding no lock
            # while it waits for the next, the probe can never be part of a deadlock.
            with self._write():
                self.db.execute_sql(f"LOCK TABLE {model._meta.table_name} IN ROW EXCLUSIVE MODE")

    # -- webhooks ------------------------------------------------------------------------

    def create_webhook(self, record: WebhookRecord) -> WebhookRecord:
        with self._write():
            m.Webhook.create(
                id=record.id,
                name=record.name,
                description=record.description,
                url=record.url,
                secret_token=self._box.seal(record.secret),
                status=record.status,
                creation_timestamp=record.creation_timestamp,
                last_updated_timestamp=record.last_updated_timestamp,
            )
            self._subscribe(record.id, record.events)
        return record

    def get_webhook(self, webhook_id: str, lock: bool = False) -> WebhookRecord | None:
        """`lock` holds the row until the transaction ends (PostgreSQL; SQLite's write
        transaction already excludes every other writer)."""
        if lock and not self.is_sqlite:
            row = m.Webhook.select().where(m.Webhook.id == webhook_id).for_update().first()
            return None if row is None else self._records([row])[0]
        # The hottest read: one statement written out and plain rows (one per event), since
        # peewee building the statement and its row objects cost several times the read.
        rows = self._sql(ONE_WEBHOOK, (webhook_id,)).fetchall()
        return self._webhook_of(rows) if rows else None

    def webhook_to_test(
        self, webhook_id: str
    ) -> tuple[WebhookRecord, filters.Filter, delivery_settings.DeliverySettings] | None:
        """A webhook as get_webhook answers it, with its filter and its delivery settings,
        read together (testWebhook's needs); None when there is no such webhook."""
        rows = self._sql(WEBHOOK_TO_TEST, (webhook_id,)).fetchall()
        if not rows:
            return None
        spec, settings = rows[0][-2:]
        return self._webhook_of(rows), filters.parse(spec), delivery_settings.parse(settings)

    def _webhook_of(self, rows: list[tuple[Any, ...]]) -> WebhookRecord:
        """The record from a webhook's rows of ONE_WEBHOOK_COLUMNS (one per event)."""
        first = rows[0]
        return WebhookRecord(
            id=first[0],
            name=first[1],
            description=first[2],
            url=first[3],
            secret=self._secret(first[4]),
            status=first[5],
            creation_timestamp=first[6],
            last_updated_timestamp=first[7],
            events=[(row[8], row[9]) for row in rows if row[8] is not None],
            previous_secret=self._secret(first[10]),
            previous_secret_until=first[11],
        )

    def list_webhooks(self, limit: int, page_token: str | None) -> Page:
        rows, token = keyset_page(m.Webhook.select(), m.Webhook, limit, page_token)
        return Page(self._records(rows), token)

    def update_webhook(
        self, webhook_id: str, change: Callable[[WebhookRecord], WebhookRecord]
    ) -> WebhookRecord | None:
        """Applies `change` to the stored webhook inside one write transaction."""
        with self._write():
            # Locked, so concurrent partial updates apply one after the other instead of
            # overwriting each other, and an update racing a delete sees the delete.
            current = self.get_webhook(webhook_id, lock=True)
            if current is None:
                return None
            updated = change(current)
            updated = replace(
                updated,
                last_updated_timestamp=max(now_ms(), current.last_updated_timestamp + 1),
            )
            columns: dict[str, Any] = {
                "name": updated.name,
                "description": updated.description,
                "url": updated.url,
                "status": updated.status,
                "last_updated_timestamp": updated.last_updated_timestamp,
            }
            if updated.secret != current.secret:  # sealed again only when it changed
                columns["secret_token"] = self._box.seal(updated.secret)
                # A rotation with no overlap: a secret a rotation replaced is forgotten too.
                columns["previous_secret_token"] = columns["previous_secret_until"] = None
                updated = replace(updated, previous_secret=None, previous_secret_until=None)
            m.Webhook.update(**columns).where(m.Webhook.id == webhook_id).execute()
            if updated.events != current.events:
                m.Subscription.delete().where(m.Subscription.webhook == webhook_id).execute()
                self._subscribe(webhook_id, updated.events)
            if updated.status != WebhookStatus.ACTIVE:
                _cancel_pending(webhook_id)
            if updated.status != current.status:
                # Whoever changes the status now owns it: the service's reason no longer holds.
                m.WebhookDisable.delete().where(m.WebhookDisable.webhook == webhook_id).execute()
        return updated

    def rotate_secret(
        self, webhook_id: str, secret: str, until: int | None
    ) -> WebhookRecord | None:
        """Makes `secret` the webhook's signing secret. The one it replaces, if any, keeps
        signing deliveries too until `until` (Unix ms; None: it is forgotten now), sealed as it
        was; a secret an earlier rotation replaced is forgotten either way (one overlap at a
        time). None when there is no such webhook."""
        with self._write():
            query = m.Webhook.select(m.Webhook.secret_token, m.Webhook.last_updated_timestamp)
            if not self.is_sqlite:  # locked as update_webhook locks it
                query = query.for_update()
            row = query.where(m.Webhook.id == webhook_id).tuples().first()
            if row is None:
                return None
            token, last_updated = row
            if token is not None and self._secret(token) == secret:
                raise InvalidArgument(
                    "The new secret is the webhook's current secret: give a different one, or "
                    "leave secret out to have one generated."
                )
            kept = token if until is not None else None
            m.Webhook.update(
                secret_token=self._box.seal(secret),
                previous_secret_token=kept,
                previous_secret_until=until if kept is not None else None,
                last_updated_timestamp=max(now_ms(), last_updated + 1),
            ).where(m.Webhook.id == webhook_id).execute()
            return self.get_webhook(webhook_id)

    def forget_expired_secrets(self, now: int) -> int:
        """Removes every rotated-out secret whose window ended by `now` (Unix ms); answers
        how many. Read first, so the write lock is taken only when there is one to remove."""
        ended = m.Webhook.select(m.Webhook.id).where(m.Webhook.previous_secret_until <= now)
        if ended.limit(1).tuples().first() is None:
            return 0
        with self._write():
            return self._forget_previous(now)

    def _forget_previous(self, now: int, webhook_ids: list[str] | None = None) -> int:
        """Removes the rotated-out secrets whose window ended by `now`, of `webhook_ids` or of
        all webhooks. The window is checked in the statement itself, so a rotation committed
        meanwhile (a new window) is never cut short, by this process or another. On
        PostgreSQL rows another transaction holds are passed over, never waited for (the
        next claim or sweep gets them): a claim, holding its deliveries' rows, waiting here
        for a webhook that a disable holds while it waits to cancel those deliveries would
        be a deadlock."""
        ended = m.Webhook.previous_secret_until <= now
        if webhook_ids is not None:
            ended &= m.Webhook.id.in_(webhook_ids)
        if not self.is_sqlite:
            free = m.Webhook.select(m.Webhook.id).where(ended).for_update(skip_locked=True)
            ended = m.Webhook.id.in_(free)
        forgotten = m.Webhook.update(previous_secret_token=None, previous_secret_until=None)
        return forgotten.where(ended).execute()

    def delete_webhook(self, webhook_id: str) -> bool:
        with self._write():
            # The webhook row is locked first, as update_webhook does, so the two never
            # deadlock on its subscriptions.
            if self.get_webhook(webhook_id, lock=True) is None:
                return False
            _cancel_pending(webhook_id)
            m.Subscription.delete().where(m.Subscription.webhook == webhook_id).execute()
            return m.Webhook.delete().where(m.Webhook.id == webhook_id).execute() > 0

    def set_filter(self, webhook_id: str, spec: filters.Filter) -> bool:
        """Stores a webhook's filter (an empty one removes it); False when there is no such
        webhook. Publishes committed after this use it."""
        with self._write():
            return self._set_webhook_column(webhook_id, filter_spec=spec.to_json())

    def get_filter(self, webhook_id: str) -> filters.Filter | None:
        """A webhook's filter (empty when it has none); None when there is no such webhook."""
        query = m.Webhook.select(m.Webhook.filter_spec).where(m.Webhook.id == webhook_id)
        row = query.tuples().first()
        return None if row is None else filters.parse(row[0])

    def change_delivery_settings(
        self, webhook_id: str, change: delivery_settings.Change
    ) -> delivery_settings.DeliverySettings | None:
        """Applies a change to a webhook's delivery settings, read and written in one
        transaction (a concurrent change of other parts is kept), and answers them as stored;
        None when there is no such webhook. Claims committed after this use them, in every
        process."""
        with self._write():
            query = m.Webhook.select(m.Webhook.delivery_settings).where(m.Webhook.id == webhook_id)
            row = (query if self.is_sqlite else query.for_update()).tuples().first()
            if row is None:
                return None
            before = delivery_settings.parse(row[0])
            settings = change.applied(before)
            self._set_webhook_column(webhook_id, delivery_settings=settings.to_json())
            if before.ordered and not settings.ordered:
                # Every delivery waiting its turn goes now. Turned on, the deliveries already
                # pending go as they were, and those published from now on wait behind them.
                self._sql(self._stop_waiting, [now_ms(), webhook_id])
        return settings

    def get_delivery_settings(self, webhook_id: str) -> delivery_settings.DeliverySettings | None:
        """A webhook's delivery settings (empty when it has none); None when there is no such
        webhook."""
        query = m.Webhook.select(m.Webhook.delivery_settings).where(m.Webhook.id == webhook_id)
        row = query.tuples().first()
        return None if row is None else delivery_settings.parse(row[0])

    def _set_webhook_column(self, webhook_id: str, **column: str | None) -> bool:
        """Sets a column of the webhook's row (in the caller's write transaction) and bumps
        its last update time; False when there is no such webhook."""
        changed = (
            m.Webhook.update(
                **column,
                last_updated_timestamp=pw.fn.MAX(now_ms(), m.Webhook.last_updated_timestamp + 1)
                if self.is_sqlite
                else pw.fn.GREATEST(now_ms(), m.Webhook.last_updated_timestamp + 1),
            )
            .where(m.Webhook.id == webhook_id)
            .execute()
        )
        return changed > 0

    # -- events and the outbox -------------------------------------------------------------

    def publish(self, event: EventRecord) -> Published:
        """Stores one event and its deliveries (see publish_many)."""
        [published] = self.publish_many([event])
        if isinstance(published, AlreadyExists):
            raise published
        return published

    def publish_many(self, events: list[EventRecord]) -> list[Published | AlreadyExists]:
        """Stores the events and one PENDING delivery per subscribed ACTIVE webhook of each,
        all in one transaction, and answers each event's id and delivery ids, in order. An
        idempotency key already stored, or used by an earlier event of the same batch,
        answers that first publication's ids instead when the event is the same, and
        AlreadyExists (for that event alone, which is not stored) when it is not."""
        for attempt in range(3):
            try:
                with self._write():
                    return self._publish_many(events)
            except pw.IntegrityError:
                # Another replica stored one of these idempotency keys between our look-up
                # and our insert (PostgreSQL; SQLite's write lock excludes it): look again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _publish_many(self, events: list[EventRecord]) -> list[Published | AlreadyExists]:
        now = max(e.creation_timestamp for e in events)
        known = self._recent_events({e.idempotency_key for e in events if e.idempotency_key}, now)
        results: list[Published | AlreadyExists | None] = [None] * len(events)
        fresh: list[int] = []  # the events to store, by index
        first_of_key: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []  # (index, index of the first event with its key)
        hashes = {i: event_hash(e.event, e.data) for i, e in enumerate(events) if e.idempotency_key}
        for i, event in enumerate(events):
            key = event.idempotency_key
            if key is not None and key in known:
                event_id, delivery_ids, stored_hash = known[key]
                same = stored_hash == hashes[i]
                results[i] = (event_id, delivery_ids) if same else _key_reused(key, event_id)
            elif key is not None and key in first_of_key:
                first = first_of_key[key]
                if hashes[first] == hashes[i]:
                    repeats.append((i, first))
                else:
                    results[i] = _key_reused(key, events[first].id)
            else:
                if key is not None:
                    first_of_key[key] = i
                fresh.append(i)
        for chunk in _chunks(fresh, 200):
            self._sql(
                INSERT_EVENTS + _rows(len(chunk), len(EVENT_COLUMNS)),
                [value for i in chunk for value in _event_values(events[i])],
            )
        # One query per (entity, action) in the batch; each event is then matched in memory
        # against its subscribers' filters, parsed once per distinct filter.
        subscribers = {kind: self._subscribers(kind) for kind in {events[i].event for i in fresh}}
        matched = [
            (events[i], _matching(subscribers[events[i].event][0], events[i].data)) for i in fresh
        ]
        ordered = set().union(*(hooks for _, hooks in subscribers.values()))
        places = self._places(Counter(h for _, hooks in matched for h in hooks if h in ordered))
        rows: list[object] = []
        for i, (event, webhook_ids) in zip(fresh, matched, strict=True):
            # Sorted, as a repeated idempotency key answers them (read back by id).
            ids = sorted(time_ordered_id(event.creation_timestamp) for _ in webhook_ids)
            results[i] = (event.id, ids)
            for delivery_id, webhook_id in zip(ids, webhook_ids, strict=True):
                place = next(places[webhook_id]) if webhook_id in places else None
                # id, event_id, webhook_id, status, attempt_count, next_attempt_timestamp,
                # is_test, creation_timestamp, sequence
                rows += [
                    delivery_id,
                    event.id,
                    webhook_id,
                    DeliveryStatus.PENDING,
                    0,
                    None if place and place.waits else event.creation_timestamp,
                    False,
                    event.creation_timestamp,
                    place.sequence if place else None,
                ]
        width = DELIVERY_COLUMNS
        for chunk in _chunks(rows, width * 200):
            self._sql(INSERT_DELIVERIES + _rows(len(chunk) // width, width), chunk)
        for i, first in repeats:
            results[i] = results[first]
        return [r for r in results if r is not None]

    def _subscribers(self, kind: Event) -> tuple[list[tuple[str, filters.Filter]], set[str]]:
        """The ACTIVE webhooks subscribed to one (entity, action), with their filters, and
        which of them are ordered."""
        rows = self._sql(SUBSCRIBERS, (kind[0], kind[1], WebhookStatus.ACTIVE)).fetchall()
        ordered = {row[0] for row in rows if delivery_settings.parse(row[2]).ordered}
        return [(row[0], filters.parse(row[1])) for row in rows], ordered

    def _places(self, counts: Counter[str]) -> dict[str, Iterator[ordering.Place]]:
        """The places in line of new deliveries to ordered webhooks, `counts[webhook]` of
        each, in publish order. Each webhook's row is taken, in id order so that two
        publishes never wait on each other's; one no longer ordered once its row is taken (or
        gone) has none: its deliveries go as any unordered webhook's."""
        places: dict[str, Iterator[ordering.Place]] = {}
        for webhook_id in sorted(counts):
            count = counts[webhook_id]
            taken = self._sql(NEXT_SEQUENCES, [count, webhook_id]).fetchall()
            if not taken or not delivery_settings.parse(taken[0][1]).ordered:
                continue
            pending = self._sql(ANY_PENDING, [DeliveryStatus.PENDING, webhook_id]).fetchall()
            line = ordering.places(taken[0][0] - count, count, bool(pending))
            places[webhook_id] = iter(line)
        return places

    def _recent_events(self, keys: set[str], now: int) -> dict[str, tuple[str, list[str], str]]:
        """The first publication of each key still in its window: its event id, delivery ids
        and event hash."""
        if not keys:
            return {}
        found: dict[str, str] = {}
        hashes: dict[str, str] = {}
        for first in m.Event.select(
            m.Event.id,
            m.Event.idempotency_key,
            m.Event.creation_timestamp,
            m.Event.idempotency_hash,
            m.Event.entity,
            m.Event.action,
            m.Event.data,
        ).where(m.Event.idempotency_key.in_(list(keys))):
            if first.creation_timestamp < now - IDEMPOTENCY_WINDOW_MS:
                # The key may be used again after its window; the old event keeps its log.
                m.Event.update(idempotency_key=None).where(m.Event.id == first.id).execute()
            else:
                found[first.idempotency_key] = first.id
                # Stored before schema version 4 without its hash: made from the event.
                hashes[first.id] = first.idempotency_hash or event_hash(
                    (first.entity, first.action), first.data
                )
        deliveries: dict[str, list[str]] = {event_id: [] for event_id in found.values()}
        if deliveries:
            for row in (
                m.Delivery.select(m.Delivery.id, m.Delivery.event)
                .where(m.Delivery.event.in_(list(deliveries)))
                .order_by(m.Delivery.id)
            ):
                deliveries[row.event_id].append(row.id)
        return {
            key: (event_id, deliveries[event_id], hashes[event_id])
            for key, event_id in found.items()
        }

    def claim(
        self,
        owner: str,
        now: int,
        lease_ms: int,
        limit: int,
        room: Room | None = None,
        timeout_ms: int = 0,
    ) -> list[Outgoing]:
        """Leases up to `limit` due deliveries to `owner`, and, when `room` is given, at most
        room(webhook_id, its maximum concurrency, as its settings say now, else the Store's
        default_concurrency) rows of each webhook (0 or less: none, as for a webhook whose
        window is full). `lease_ms` covers an attempt of `timeout_ms`; a webhook whose
        settings allow a longer one has its rows leased for that much longer. A row whose
        lease expired (its process died) is due again. On PostgreSQL the rows are locked with
        SKIP LOCKED, so replicas claiming at once never take the same row."""
        with self._write():
            return self._claim(owner, now, lease_ms, limit, room, timeout_ms)

    def exchange(
        self,
        outcomes: list[Outcome],
        cancelled: list[str],
        owner: str,
        now: int,
        lease_ms: int,
        limit: int,
        room: Room | None = None,
        timeout_ms: int = 0,
        every_turn: bool = False,
    ) -> list[Outgoing]:
        """The delivery worker's one transaction per round: writes the attempt results and
        cancellations it has, then claims as record() and claim() do. With `every_turn` it
        first looks at every ordered webhook with deliveries waiting and passes the turn of
        each that has none out or due: an attempt that ended one while ordering was being
        turned on did not know to pass it (its process read the webhook before)."""
        with self._write():
            self._write_results(outcomes, now)
            self._cancel(cancelled)
            if every_turn:
                for (webhook_id,) in self._sql(self._waiting_webhooks).fetchall():
                    self._next_turn(webhook_id, now)
            if limit <= 0:
                return []
            return self._claim(owner, now, lease_ms, limit, room, timeout_ms)

    def _claim(
        self,
        owner: str,
        now: int,
        lease_ms: int,
        limit: int,
        room: Room | None,
        timeout_ms: int,
    ) -> list[Outgoing]:
        """The cost of a claim never follows one webhook's backlog: it reads a window of
        CLAIM_WINDOW x `limit` due rows in next-attempt order, and only when busy (or full)
        webhooks' rows crowd that window does it look up each webhook's oldest due rows
        instead. The rows are read unlocked and only the chosen ones locked (PostgreSQL), so
        rows a claim passes over stay free for other replicas' claims running meanwhile."""
        window = limit * CLAIM_WINDOW
        due = self._sql(
            DUE + ' ORDER BY "next_attempt_timestamp" LIMIT ?',
            [DeliveryStatus.PENDING, now, now, window],
        ).fetchall()
        maxima = self._maxima({hook for _, hook in due}) if room else {}
        fits = _Fit(limit, room, maxima, self._default_concurrency)
        chosen = fits.take(due, window)
        if len(chosen) < limit and len(due) == window:
            pending = DeliveryStatus.PENDING
            hooks = [h for (h,) in self._sql(PENDING_WEBHOOKS, [pending, pending]).fetchall()]
            maxima = self._maxima(set(hooks)) if room else {}
            fits = _Fit(limit, room, maxima, self._default_concurrency)
            due = self._due_by_webhook(now, fits, hooks)
            chosen = fits.take(due, len(due))
        # SQLite's write lock already excludes every other claim.
        ids = chosen[:limit] if self.is_sqlite else self._lock(due, chosen, fits, limit, now)
        if not ids:
            return []
        # Read first (the rows are this transaction's already), for their settings' timeouts.
        found = self._outgoing(ids)
        leases: dict[int, list[str]] = {}
        for item in found:
            longer = 0 if item.settings.timeout is None else int(item.settings.timeout * 1000)
            leases.setdefault(lease_ms + max(0, longer - timeout_ms), []).append(item.delivery_id)
        for ms, leased in leases.items():
            self._sql(LEASE + _row(len(leased)), [owner, now + ms, *leased])
        # The next delivery after a rotation's window forgets the old secret (which it is
        # not signed with: see Secrets.previous_at).
        ended = {
            o.webhook_id
            for o in found
            if o.secrets.previous_until is not None and o.secrets.previous_until <= now
        }
        if ended:
            self._forget_previous(now, sorted(ended))
        return found

    def _lock(
        self, due: list[tuple[str, str]], chosen: list[str], fits: _Fit, limit: int, now: int
    ) -> list[str]:
        """PostgreSQL: locks the chosen rows, skipping those another replica's claim holds,
        and tries the next fitting rows in their place: replicas claiming at once read the
        same due rows, and the later one would otherwise come away with none."""
        ids: list[str] = []
        tried: set[str] = set()
        while chosen and len(ids) < limit:
            got = [
                delivery_id
                for (delivery_id,) in self._sql(
                    LOCK_CHOSEN.format(ids=_row(len(chosen))),
                    [DeliveryStatus.PENDING, now, *chosen, limit - len(ids)],
                ).fetchall()
            ]
            ids += got
            tried.update(chosen)
            missed = set(chosen).difference(got)
            if not missed:
                break
            fits.give_back([row for row in due if row[0] in missed])
            chosen = fits.take([row for row in due if row[0] not in tried], limit - len(ids))
        return ids

    def _maxima(self, hooks: set[str]) -> dict[str, int]:
        """The maximum concurrency of those of `hooks` whose settings set one."""
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(hooks), 500):
            rows = self._sql(MAXIMA.format(ids=_row(len(chunk))), chunk).fetchall()
            for hook, stored in rows:
                maximum = delivery_settings.parse(stored).max_concurrency
                if maximum is not None:
                    found[hook] = maximum
        return found

    def _due_by_webhook(
        self, now: int, fits: _Fit, pending_hooks: list[str]
    ) -> list[tuple[str, str]]:
        """The oldest due rows (id, webhook) of each webhook with room, as many as it has
        room for, oldest first: one index seek per webhook with pending rows."""
        pending = DeliveryStatus.PENDING
        hooks = [hook for hook in pending_hooks if fits.room(hook) > 0]
        rows: list[tuple[str, str, int]] = []
        for chunk in _chunks(hooks, 100):  # SQLite allows 500 terms in a compound SELECT
            text = " UNION ALL ".join(DUE_OF_WEBHOOK.format(n=n) for n in range(len(chunk)))
            params: list[object] = []
            for hook in chunk:
                params += [pending, hook, now, now, min(fits.limit, fits.room(hook))]
            rows += self._sql(text, params).fetchall()
        rows.sort(key=lambda row: row[2])
        return [row[:2] for row in rows]

    def outgoing(self, delivery_id: str) -> Outgoing | None:
        found = self._outgoing([delivery_id])
        return found[0] if found else None

    def _outgoing(self, ids: list[str]) -> list[Outgoing]:
        rows = self._sql(OUTGOING.format(ids=_row(len(ids))), ids).fetchall()
        return [
            Outgoing(
                delivery_id=delivery_id,
                webhook_id=webhook_id,
                attempt_count=attempt_count,
                event=(entity, action),
                data=data,
                occurred_at=occurred_at,
                payload=payload,
                url=url,
                # Tuples: a deleted webhook's columns are NULL, its status too.
                secrets=Secrets(self._secret(secret_token), self._secret(previous_token), until),
                webhook_active=status == WebhookStatus.ACTIVE,
                manual_attempts=manual_attempts,
                settings=delivery_settings.parse(stored_settings),
            )
            for (
                delivery_id,
                webhook_id,
                attempt_count,
                entity,
                action,
                data,
                occurred_at,
                payload,
                url,
                secret_token,
                status,
                manual_attempts,
                stored_settings,
                previous_token,
                until,
            ) in rows
        ]

    def record(self, outcomes: list[Outcome]) -> None:
        """Writes a batch of attempt results in one transaction and releases their leases."""
        if outcomes:
            with self._write():
                self._write_results(outcomes, now_ms())

    def _write_results(self, outcomes: list[Outcome], now: int) -> None:
        """Each outcome's attempt is logged under the next number of its delivery (whatever
        `attempt.number` says: a redeliver may have been logged since it was claimed). An
        outcome that ended an ordered webhook's delivery passes the webhook's turn on, due
        at `now`; the webhook's row is taken first, as every writer that takes it and rows
        of its deliveries does, so none of them waits on another in a cycle."""
        if not outcomes:
            return
        turns = sorted({o.passes_turn for o in outcomes if o.passes_turn})
        self._take_webhooks(turns)
        # The results first: on PostgreSQL this locks the rows, so a redeliver of one of
        # them in another transaction waits, and the numbers read next are the latest.
        # One UPDATE per distinct result (all first-attempt successes share one), not
        # one per delivery.
        same: dict[tuple[int, int | None], list[str]] = {}
        for o in outcomes:
            same.setdefault((o.status, o.next_attempt_timestamp), []).append(o.delivery_id)
        succeeded = DeliveryStatus.SUCCEEDED
        for (status, next_attempt), ids in same.items():
            for chunk in _chunks(ids, 500):
                self._sql(
                    RESULT + _row(len(chunk)), [succeeded, status, succeeded, next_attempt, *chunk]
                )
        self._log_attempts([(o.delivery_id, o.attempt) for o in outcomes])
        for o in outcomes:
            if o.webhook_to_disable:
                _disable(o.webhook_to_disable, o.disable_reason, o.attempt.timestamp)
        for webhook_id in turns:
            self._next_turn(webhook_id, now)

    def _take_webhooks(self, webhook_ids: list[str]) -> None:
        """Takes the rows of these (sorted) webhooks until the transaction ends: on
        PostgreSQL a row lock; SQLite's write transaction already excludes every writer."""
        if webhook_ids and not self.is_sqlite:
            self._sql(TAKE_WEBHOOKS.format(ids=_row(len(webhook_ids))), webhook_ids)

    def _next_turn(self, webhook_id: str, now: int) -> None:
        """Gives an ordered webhook's first waiting delivery its turn, due at `now`, unless one
        of its deliveries is out or due (see NEXT_TURN)."""
        pending = DeliveryStatus.PENDING
        self._sql(self._next_turn_sql, [now, webhook_id, pending, webhook_id])

    def _log_attempts(self, attempts: list[tuple[str, AttemptRecord]]) -> list[int]:
        """Appends each attempt to its delivery's log, numbered after the last one logged:
        every attempt made is logged, whoever made it and however they raced (the caller
        holds the write lock, and on PostgreSQL the deliveries' rows)."""
        last: Counter[str] = Counter()
        for chunk in _chunks(list({d for d, _ in attempts}), 500):
            rows = self._sql(LAST_ATTEMPTS.format(ids=_row(len(chunk))), chunk).fetchall()
            last.update({delivery_id: number for delivery_id, number in rows})
        values: list[object] = []
        numbers = []
        for delivery_id, attempt in attempts:
            last[delivery_id] += 1
            numbers.append(last[delivery_id])
            values += [
                delivery_id,
                last[delivery_id],
                attempt.timestamp,
                attempt.duration_ms,
                attempt.response_status,
                attempt.response_body[:RESPONSE_BODY_LOGGED],
                attempt.error,
            ]
        for chunk in _chunks(values, 7 * 200):
            self._sql(INSERT_ATTEMPTS.format(rows=_rows(len(chunk) // 7, 7)), chunk)
        return numbers

    def record_redelivery(
        self,
        delivery_id: str,
        attempt: AttemptRecord,
        after: Callable[[DeliveryStatus], DeliveryStatus | None],
        webhook_to_disable: str | None = None,
        ordered: str | None = None,
    ) -> tuple[int, DeliveryStatus] | None:
        """Logs a redeliver's attempt, an extra one outside the retry schedule, and sets the
        status `after(current status)` answers (None: unchanged, schedule and lease kept).
        A delivery of the `ordered` webhook that this ends passes the webhook's turn on.
        Answers the attempt's number in the log and the status, or None if the delivery is
        gone."""
        with self._write():
            self._take_webhooks([ordered] if ordered else [])
            lock = "" if self.is_sqlite else " FOR UPDATE"
            found = self._sql(DELIVERY_STATUS + lock, [delivery_id]).fetchall()
            if not found:
                return None
            self._sql(MANUAL_ATTEMPT, [delivery_id])
            [number] = self._log_attempts([(delivery_id, attempt)])
            changed = after(DeliveryStatus(found[0][0]))
            if changed is not None:
                # Ended: no next attempt. A worker holding the lease still writes its own
                # attempt's result, which leaves SUCCEEDED as it is (see RESULT).
                self._sql(SET_STATUS, [changed, None, delivery_id])
            if webhook_to_disable:
                reason = f"The receiver answered 410 Gone to a redelivery of {delivery_id}."
                _disable(webhook_to_disable, reason, attempt.timestamp)
            if ordered and changed is not None:
                self._next_turn(ordered, now_ms())
            [(status,)] = self._sql(DELIVERY_STATUS, [delivery_id]).fetchall()
        return number, DeliveryStatus(status)

    def cancel(self, delivery_ids: list[str]) -> None:
        """Cancels deliveries whose webhook was deleted or disabled after they were claimed."""
        with self._write():
            self._cancel(delivery_ids)

    @staticmethod
    def _cancel(delivery_ids: list[str]) -> None:
        for chunk in _chunks(delivery_ids, 500):
            m.Delivery.update(
                status=DeliveryStatus.CANCELLED,
                next_attempt_timestamp=None,
                lease_owner=None,
                lease_until=None,
            ).where(m.Delivery.id.in_(chunk)).execute()

    def release(self, owner: str, delivery_ids: list[str]) -> None:
        """Hands claimed rows back (on shutdown) so any process can take them at once."""
        with self._write():
            m.Delivery.update(lease_owner=None, lease_until=None).where(
                m.Delivery.id.in_(delivery_ids) & (m.Delivery.lease_owner == owner)
            ).execute()

    def record_test(
        self, event: EventRecord, webhook_id: str, delivery_id: str, outcome: Outcome
    ) -> None:
        """Logs a testWebhook send as an event with one delivery and its one attempt."""
        with self._write():
            _insert_event(event)
            m.Delivery.create(
                id=delivery_id,
                event=event.id,
                webhook_id=webhook_id,
                status=outcome.status,
                attempt_count=0,  # the one below counts
                is_test=True,
                creation_timestamp=event.creation_timestamp,
            )
            self._write_results([outcome], now_ms())

    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        row = (
            m.Delivery.select(m.Delivery, m.Event)
            .join(m.Event)
            .where(m.Delivery.id == delivery_id)
            .first()
        )
        if row is None:
            return None
        attempts = (
            m.Attempt.select().where(m.Attempt.delivery == delivery_id).order_by(m.Attempt.number)
        )
        records = [
            AttemptRecord(
                a.number,
                a.timestamp,
                a.duration_ms,
                a.response_status,
                a.response_body,
                a.error,
            )
            for a in attempts
        ]
        last = records[-1] if records else None
        return replace(
            _delivery(row, records, last),
            data=row.event.data,
            occurred_at=row.event.occurred_at,
            payload=row.event.payload,
        )

    def list_deliveries(
        self,
        limit: int,
        page_token: str | None,
        webhook_id: str | None = None,
        event_id: str | None = None,
        status: int | None = None,
        event: Event | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> Page:
        """Newest first, each with its latest attempt; every filter given must hold, and the
        time range [since, until) applies to the creation time."""
        query = _summaries()
        if webhook_id:
            query = query.where(m.Delivery.webhook_id == webhook_id)
        if event_id:
            query = query.where(m.Delivery.event == event_id)
        if status:
            query = query.where(m.Delivery.status == status)
        if event is not None:
            query = query.where((m.Event.entity == event[0]) & (m.Event.action == event[1]))
        if since is not None:
            query = query.where(m.Delivery.creation_timestamp >= since)
        if until is not None:
            query = query.where(m.Delivery.creation_timestamp < until)
        rows, token = keyset_page(query, m.Delivery, limit, page_token)
        return Page([_summary(row) for row in rows], token)

    def failed_deliveries(
        self, webhook_id: str, since: int, limit: int, page_token: str | None
    ) -> Page:
        """A webhook's FAILED deliveries created at or after `since`, oldest first, ready to
        send again; the page token goes on after the last one."""
        where = (
            (m.Delivery.webhook_id == webhook_id)
            & (m.Delivery.status == DeliveryStatus.FAILED)
            & (m.Delivery.creation_timestamp >= since)
        )
        if page_token:
            ts, last_id = decode_cursor(page_token)
            where &= pw.Tuple(m.Delivery.creation_timestamp, m.Delivery.id) > pw.Tuple(ts, last_id)
        rows = list(
            m.Delivery.select(m.Delivery.id, m.Delivery.creation_timestamp)
            .where(where)
            .order_by(m.Delivery.creation_timestamp, m.Delivery.id)
            .limit(limit + 1)
        )
        token = None
        if len(rows) > limit:
            rows = rows[:limit]
            token = encode_cursor(rows[-1].creation_timestamp, rows[-1].id)
        if not rows:
            return Page([], None)
        found = {o.delivery_id: o for o in self._outgoing([r.id for r in rows])}
        return Page([found[r.id] for r in rows if r.id in found], token)

    def webhook_health(self, webhook_ids: list[str], since: int) -> list[Health]:
        """The health of each known webhook of `webhook_ids`, in their order; deliveries and
        failures count what was created at or after `since`."""
        known = {
            row.id: row
            for row in m.Webhook.select(
                m.Webhook.id,
                m.Webhook.previous_secret_until,
                m.WebhookDisable.reason,
                m.WebhookDisable.timestamp,
            )
            .join(m.WebhookDisable, pw.JOIN.LEFT_OUTER)
            .where(m.Webhook.id.in_(webhook_ids))
            .objects()
        }
        failing = (m.Delivery.status == DeliveryStatus.FAILED) | (
            (m.Delivery.status == DeliveryStatus.PENDING) & (m.Delivery.attempt_count > 0)
        )
        counts = {
            webhook_id: (total, failures)
            for webhook_id, total, failures in m.Delivery.select(
                m.Delivery.webhook_id,
                pw.fn.COUNT(m.Delivery.id),
                pw.fn.SUM(pw.Case(None, [(failing, 1)], 0)),
            )
            .where(
                m.Delivery.webhook_id.in_(list(known)) & (m.Delivery.creation_timestamp >= since)
            )
            .group_by(m.Delivery.webhook_id)
            .tuples()
        }
        # Each webhook's newest delivery in one query: the (webhook_id, creation_timestamp,
        # id) index answers the MAX per webhook, and the rows at those times are read once.
        newest_times = (
            m.Delivery.select(m.Delivery.webhook_id, pw.fn.MAX(m.Delivery.creation_timestamp))
            .where(m.Delivery.webhook_id.in_(list(known)))
            .group_by(m.Delivery.webhook_id)
        )
        newest: dict[str, m.Delivery] = {}
        if known:
            for row in _summaries().where(
                pw.Tuple(m.Delivery.webhook_id, m.Delivery.creation_timestamp).in_(newest_times)
            ):
                seen = newest.get(row.webhook_id)
                if seen is None or row.id > seen.id:  # ties at one millisecond: as listed
                    newest[row.webhook_id] = row
        result = []
        now = now_ms()
        for webhook_id in dict.fromkeys(webhook_ids):
            row = known.get(webhook_id)
            if row is None:
                continue
            total, failures = counts.get(webhook_id, (0, 0))
            last = newest.get(webhook_id)
            # A window that has ended is over, whether the sweep has removed it yet or not.
            until = row.previous_secret_until
            result.append(
                Health(
                    webhook_id=webhook_id,
                    last_delivery=_summary(last) if last is not None else None,
                    deliveries=total,
                    failures=int(failures or 0),
                    disabled_reason=row.reason,
                    disabled_timestamp=row.timestamp,
                    previous_secret_until=until if until is not None and until > now else None,
                )
            )
        return result

    def prune(self, cutoff: int, batch: int) -> Pruned:
        """Deletes up to `batch` finished deliveries created before `cutoff` whose last
        attempt is older too, with their attempts, then up to `batch` events created before
        `cutoff` that no delivery refers to. PENDING deliveries, new or retrying, stay."""
        recent_attempt = m.Attempt.select(m.Attempt.delivery).where(
            (m.Attempt.delivery == m.Delivery.id) & (m.Attempt.timestamp >= cutoff)
        )
        with self._write():
            ids = [
                row.id
                for row in m.Delivery.select(m.Delivery.id)
                .where(
                    (m.Delivery.creation_timestamp < cutoff)
                    & (m.Delivery.status != DeliveryStatus.PENDING)
                    & ~pw.fn.EXISTS(recent_attempt)
                )
                .order_by(m.Delivery.creation_timestamp)
                .limit(batch)
            ]
            if ids:
                m.Attempt.delete().where(m.Attempt.delivery.in_(ids)).execute()
                m.Delivery.delete().where(m.Delivery.id.in_(ids)).execute()
        needed = m.Delivery.select(m.Delivery.id).where(m.Delivery.event == m.Event.id)
        with self._write():
            event_ids = [
                row.id
                for row in m.Event.select(m.Event.id)
                .where((m.Event.creation_timestamp < cutoff) & ~pw.fn.EXISTS(needed))
                .order_by(m.Event.creation_timestamp)
                .limit(batch)
            ]
            if event_ids:
                m.Event.delete().where(m.Event.id.in_(event_ids)).execute()
        return Pruned(len(ids), len(event_ids))

    def backlog(self) -> tuple[int, int | None]:
        """How many deliveries are PENDING, and the creation time of the oldest."""
        row = (
            m.Delivery.select(pw.fn.COUNT(m.Delivery.id), pw.fn.MIN(m.Delivery.creation_timestamp))
            .where(m.Delivery.status == DeliveryStatus.PENDING)
            .tuples()
            .first()
        )
        return (row[0], row[1]) if row else (0, None)

    # -- helpers -------------------------------------------------------------------------

    def _subscribe(self, webhook_id: str, events: list[Event]) -> None:
        m.Subscription.insert_many(
            [
                {"webhook": webhook_id, "entity": e, "action": a, "position": i}
                for i, (e, a) in enumerate(events)
            ]
        ).execute()

    def _records(self, rows: list[m.Webhook]) -> list[WebhookRecord]:
        """Rows to records, with every row's events read in one query."""
        events: dict[str, list[Event]] = {row.id: [] for row in rows}
        if rows:
            subs = (
                m.Subscription.select()
                .where(m.Subscription.webhook.in_(list(events)))
                .order_by(m.Subscription.position)
            )
            for sub in subs:
                events[sub.webhook_id].append((sub.entity, sub.action))
        return [self._record(row, events[row.id]) for row in rows]

    def _record(self, row: m.Webhook, events: list[Event]) -> WebhookRecord:
        return WebhookRecord(
            id=row.id,
            name=row.name,
            description=row.description,
            url=row.url,
            events=events,
            status=row.status,
            secret=self._secret(row.secret_token),
            previous_secret=self._secret(row.previous_secret_token),
            previous_secret_until=row.previous_secret_until,
            creation_timestamp=row.creation_timestamp,
            last_updated_timestamp=row.last_updated_timestamp,
        )


def _matching(subscribers: list[tuple[str, filters.Filter]], data: str) -> list[str]:
    """The subscribers whose filter takes an event with `data` (JSON text, parsed only when
    some subscriber has a filter)."""
    if all(f.empty for _, f in subscribers):
        return [webhook_id for webhook_id, _ in subscribers]
    parsed = json.loads(data)
    return [webhook_id for webhook_id, f in subscribers if f.matches(parsed)]


def _event_values(event: EventRecord) -> tuple[object, ...]:
    return (
        event.id,
        event.event[0],
        event.event[1],
        event.data,
        event.occurred_at,
        event.idempotency_key,
        event.creation_timestamp,
        event.payload,
        event_hash(event.event, event.data) if event.idempotency_key else None,
    )


def _insert_event(event: EventRecord) -> None:
    m.Event.insert(dict(zip(EVENT_COLUMNS, _event_values(event), strict=True))).execute()


def _disable(webhook_id: str, reason: str, timestamp: int) -> None:
    """Sets the webhook DISABLED after its receiver answered 410 Gone, cancels its pending
    deliveries, and keeps why for getWebhookHealth."""
    disabled = (
        m.Webhook.update(status=WebhookStatus.DISABLED, last_updated_timestamp=now_ms())
        .where(m.Webhook.id == webhook_id)
        .execute()
    )
    _cancel_pending(webhook_id)
    if disabled:  # not when the webhook was deleted meanwhile
        m.WebhookDisable.delete().where(m.WebhookDisable.webhook == webhook_id).execute()
        m.WebhookDisable.create(webhook=webhook_id, reason=reason, timestamp=timestamp)


def _cancel_pending(webhook_id: str) -> None:
    m.Delivery.update(
        status=DeliveryStatus.CANCELLED,
        next_attempt_timestamp=None,
        lease_owner=None,
        lease_until=None,
    ).where(
        (m.Delivery.webhook_id == webhook_id) & (m.Delivery.status == DeliveryStatus.PENDING)
    ).execute()


def _delivery(
    row: m.Delivery, attempts: list[AttemptRecord], last: AttemptRecord | None
) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        event_id=row.event_id,
        webhook_id=row.webhook_id,
        event=(row.event.entity, row.event.action),
        status=DeliveryStatus(row.status),
        next_attempt_timestamp=row.next_attempt_timestamp,
        creation_timestamp=row.creation_timestamp,
        is_test=row.is_test,
        attempts=attempts,
        attempt_count=row.attempt_count,
        last_attempt=last,
    )


_Last = m.Attempt.alias("last_attempt")


def _summaries() -> pw.ModelSelect:
    """Deliveries with their event type and their latest attempt (the one numbered
    attempt_count: one primary-key look-up each), without bodies or event data, so that a
    page of a thousand stays small."""
    return (
        m.Delivery.select(
            m.Delivery,
            m.Event.id,  # without it the joined event would blank the row's event_id
            m.Event.entity,
            m.Event.action,
            _Last.number,
            _Last.timestamp,
            _Last.duration_ms,
            _Last.response_status,
            _Last.error,
        )
        .join(m.Event)
        .switch(m.Delivery)
        .join(
            _Last,
            pw.JOIN.LEFT_OUTER,
            on=(_Last.delivery == m.Delivery.id) & (_Last.number == m.Delivery.attempt_count),
            attr="last",
        )
    )


def _summary(row: m.Delivery) -> DeliveryRecord:
    attempt = getattr(row, "last", None)
    last = None
    if attempt is not None and attempt.number is not None:
        last = AttemptRecord(
            attempt.number,
            attempt.timestamp,
            attempt.duration_ms,
            attempt.response_status,
            "",
            attempt.error,
        )
    return _delivery(row, [], last)
