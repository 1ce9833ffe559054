"""The store: every SQL statement the service runs, behind plain methods and dataclasses.

Methods are synchronous (peewee is); the core calls them from a thread pool. Each method is
one short transaction."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import peewee as pw
from playhouse.db_url import connect

from server.errors import InvalidArgument
from server.events import Event
from server.store import models as m
from server.store.secrets import SecretBox, load_key

SCHEMA_VERSION = 1
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10000,
    "synchronous": "normal",
    "foreign_keys": 1,
}


@dataclass(frozen=True)
class WebhookRecord:
    id: str
    name: str
    url: str
    events: list[Event]
    status: int
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Page:
    items: list[WebhookRecord]
    next_token: str | None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def encode_cursor(timestamp: int, item_id: str) -> str:
    raw = json.dumps([timestamp, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, str]:
    try:
        timestamp, item_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(timestamp, int) and isinstance(item_id, str):
            return timestamp, item_id
    except (ValueError, TypeError, binascii.Error):
        pass
    raise InvalidArgument(
        f"Invalid page_token {token!r}: pass the next_page_token of the previous response "
        "unchanged."
    )


def sqlite_path(database_url: str) -> str | None:
    """The file path of an SQLite URL (":memory:" for memory), or None for other databases."""
    parts = urlsplit(database_url)
    if not parts.scheme.startswith("sqlite"):
        return None
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    return (path[1:] if path.startswith("/") else path) or ":memory:"


class Store:
    def __init__(self, database_url: str, secret_key: str | None) -> None:
        path = sqlite_path(database_url)
        self.is_sqlite = path is not None
        kwargs: dict[str, Any] = {"pragmas": SQLITE_PRAGMAS} if self.is_sqlite else {}
        self.db: pw.Database = connect(database_url, **kwargs)
        m.database.initialize(self.db)
        self._box = SecretBox(load_key(secret_key, path))

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Creates or migrates the schema, then proves the key opens the stored secrets."""
        with self._write():
            self.db.create_tables(m.TABLES, safe=True)
            row = m.SchemaVersion.select().first()
            if row is None:
                m.SchemaVersion.create(version=SCHEMA_VERSION)
            elif row.version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database has schema version {row.version}, newer than this server's "
                    f"{SCHEMA_VERSION}: run a newer server"
                )
        sample = (
            m.Webhook.select(m.Webhook.secret_token)
            .where(m.Webhook.secret_token.is_null(False))
            .first()
        )
        if sample is not None:
            self._box.open(sample.secret_token)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        # SQLite upgrades a read lock to a write lock lazily, and a busy upgrade fails at once
        # instead of waiting; taking the write lock up front lets busy_timeout do its job.
        with self.db.atomic("IMMEDIATE") if self.is_sqlite else self.db.atomic():
            yield

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

    def get_webhook(self, webhook_id: str) -> WebhookRecord | None:
        row = m.Webhook.get_or_none(m.Webhook.id == webhook_id)
        return None if row is None else self._records([row])[0]

    def list_webhooks(self, limit: int, page_token: str | None) -> Page:
        query = m.Webhook.select().order_by(
            m.Webhook.creation_timestamp.desc(), m.Webhook.id.desc()
        )
        if page_token:
            ts, last_id = decode_cursor(page_token)
            query = query.where(
                (m.Webhook.creation_timestamp < ts)
                | ((m.Webhook.creation_timestamp == ts) & (m.Webhook.id < last_id))
            )
        rows = list(query.limit(limit + 1))
        items = self._records(rows[:limit])
        more = len(rows) > limit
        last = items[-1] if items else None
        token = encode_cursor(last.creation_timestamp, last.id) if more and last else None
        return Page(items, token)

    def update_webhook(
        self, webhook_id: str, change: Callable[[WebhookRecord], WebhookRecord]
    ) -> WebhookRecord | None:
        """Applies `change` to the stored webhook inside one write transaction."""
        with self._write():
            current = self.get_webhook(webhook_id)
            if current is None:
                return None
            updated = change(current)
            updated = replace(
                updated,
                last_updated_timestamp=max(now_ms(), current.last_updated_timestamp + 1),
            )
            m.Webhook.update(
                name=updated.name,
                description=updated.description,
                url=updated.url,
                secret_token=self._box.seal(updated.secret),
                status=updated.status,
                last_updated_timestamp=updated.last_updated_timestamp,
            ).where(m.Webhook.id == webhook_id).execute()
            if updated.events != current.events:
                m.Subscription.delete().where(m.Subscription.webhook == webhook_id).execute()
                self._subscribe(webhook_id, updated.events)
        return updated

    def delete_webhook(self, webhook_id: str) -> bool:
        with self._write():
            m.Subscription.delete().where(m.Subscription.webhook == webhook_id).execute()
            return m.Webhook.delete().where(m.Webhook.id == webhook_id).execute() > 0

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
        return [
            WebhookRecord(
                id=row.id,
                name=row.name,
                description=row.description,
                url=row.url,
                events=events[row.id],
                status=row.status,
                secret=self._box.open(row.secret_token),
                creation_timestamp=row.creation_timestamp,
                last_updated_timestamp=row.last_updated_timestamp,
            )
            for row in rows
        ]
