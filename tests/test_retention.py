"""Retention (--retention-days): the store's prune on SQLite and PostgreSQL removes exactly
what is past the window and nothing PENDING; the running server prunes in the background."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

import aiohttp

from mlflow_webhooks.server.retention import DAY_MS, cutoff
from mlflow_webhooks.server.store import (
    AttemptRecord,
    DeliveryStatus,
    EventRecord,
    Outcome,
    Pruned,
    Store,
    WebhookRecord,
    WebhookStatus,
    now_ms,
)
from mlflow_webhooks.server.store import models as m
from tests.support import own_server

EVENT = (2, 1)  # MODEL_VERSION, CREATED
OTHER = (5, 1)  # PROMPT, CREATED
NOW = now_ms()
CUTOFF = cutoff(NOW, 30)
OLD = CUTOFF - DAY_MS  # past the window
NEW = CUTOFF + DAY_MS  # inside it


def make_webhook(store: Store) -> str:
    record = WebhookRecord(
        id=str(uuid.uuid4()),
        name="w",
        url="https://example.com/h",
        events=[EVENT],
        status=WebhookStatus.ACTIVE,
        creation_timestamp=NOW,
        last_updated_timestamp=NOW,
    )
    return store.create_webhook(record).id


def publish(store: Store, at: int, kind: tuple[int, int] = EVENT) -> tuple[str, list[str]]:
    return store.publish(
        EventRecord(
            id=str(uuid.uuid4()),
            event=kind,
            data=json.dumps({"n": 1}),
            occurred_at="2026-01-01T00:00:00+00:00",
            creation_timestamp=at,
        )
    )


def attempt(store: Store, delivery_id: str, number: int, at: int, status: DeliveryStatus) -> None:
    record = AttemptRecord(number, at, 3, 500, "no", "receiver answered HTTP 500")
    following = at + 60_000 if status == DeliveryStatus.PENDING else None
    store.record([Outcome(delivery_id, record, status, following)])


def cancel(store: Store, delivery_id: str) -> None:
    store.cancel([delivery_id])


def counts(store: Store) -> tuple[int, int, int]:
    return (
        m.Delivery.select().count(),
        m.Attempt.select().count(),
        m.Event.select().count(),
    )


def test_prunes_exactly_what_is_past_the_window(store: Store) -> None:
    make_webhook(store)
    # Past the window and finished: these go, attempts and events with them.
    old_succeeded = publish(store, OLD)
    attempt(store, old_succeeded[1][0], 1, OLD + 5, DeliveryStatus.SUCCEEDED)
    old_failed = publish(store, OLD)
    attempt(store, old_failed[1][0], 1, OLD + 5, DeliveryStatus.PENDING)
    attempt(store, old_failed[1][0], 2, OLD + 10, DeliveryStatus.FAILED)
    old_cancelled = publish(store, OLD)
    cancel(store, old_cancelled[1][0])
    no_subscriber = publish(store, OLD, OTHER)  # an event no webhook wanted
    # Kept: still PENDING (never tried, or retrying), recently attempted, or inside the window.
    old_pending = publish(store, OLD)
    old_retrying = publish(store, OLD)
    attempt(store, old_retrying[1][0], 1, OLD + 5, DeliveryStatus.PENDING)
    redelivered = publish(store, OLD)
    attempt(store, redelivered[1][0], 1, OLD + 5, DeliveryStatus.FAILED)
    attempt(store, redelivered[1][0], 2, NEW, DeliveryStatus.FAILED)  # sent again lately
    new_succeeded = publish(store, NEW)
    attempt(store, new_succeeded[1][0], 1, NEW + 5, DeliveryStatus.SUCCEEDED)
    new_event = publish(store, NEW, OTHER)
    assert counts(store) == (7, 7, 9)

    pruned = store.prune(CUTOFF, 500)

    assert (pruned.deliveries, pruned.events) == (3, 4)
    for gone in (old_succeeded, old_failed, old_cancelled):
        assert store.get_delivery(gone[1][0]) is None
        assert m.Event.get_or_none(m.Event.id == gone[0]) is None
    assert m.Event.get_or_none(m.Event.id == no_subscriber[0]) is None
    kept = [old_pending, old_retrying, redelivered, new_succeeded]
    for event_id, [delivery_id] in kept:
        assert store.get_delivery(delivery_id) is not None
        assert m.Event.get_or_none(m.Event.id == event_id) is not None
    assert m.Event.get_or_none(m.Event.id == new_event[0]) is not None
    assert counts(store) == (4, 4, 5)
    assert [a.number for a in store.get_delivery(redelivered[1][0]).attempts] == [1, 2]
    # A second pass finds nothing more.
    assert store.prune(CUTOFF, 500) == Pruned(0, 0)


def test_prunes_in_batches(store: Store) -> None:
    make_webhook(store)
    for _ in range(5):
        _, [delivery_id] = publish(store, OLD)
        attempt(store, delivery_id, 1, OLD + 1, DeliveryStatus.SUCCEEDED)
    passes = []
    while True:
        pruned = store.prune(CUTOFF, 2)
        passes.append((pruned.deliveries, pruned.events))
        if pruned.deliveries == pruned.events == 0:
            break
    # At most two rows of each kind per transaction; events follow their deliveries.
    assert passes == [(2, 2), (2, 2), (1, 1), (0, 0)]
    assert counts(store) == (0, 0, 0)


def old_rows(path: Path) -> tuple[str, str]:
    """A database holding an old finished delivery and an old PENDING one, made by the store
    before the server opens it."""
    store = Store(f"sqlite:///{path}", None)
    store.open()
    try:
        make_webhook(store)
        _, [finished] = publish(store, OLD)
        attempt(store, finished, 1, OLD + 1, DeliveryStatus.FAILED)
        _, [waiting] = publish(store, OLD)
        attempt(store, waiting, 1, OLD + 1, DeliveryStatus.PENDING)
        # Far in the future, so the server's worker leaves it alone meanwhile.
        store.record(
            [
                Outcome(
                    waiting,
                    AttemptRecord(2, OLD + 2, 3, 500, "", "receiver answered HTTP 500"),
                    DeliveryStatus.PENDING,
                    NOW + 365 * DAY_MS,
                )
            ]
        )
        return finished, waiting
    finally:
        store.close()


async def test_server_prunes_in_the_background(tmp_path: Path) -> None:
    finished, waiting = old_rows(tmp_path / "webhooks.db")
    server = own_server(tmp_path, "--retention-days", "30")
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{server.http_url}/api/2.0/mlflow/webhook-deliveries"
            for _ in range(600):  # the first pass runs a few seconds after start
                async with session.get(url) as response:
                    ids = [d["delivery_id"] for d in (await response.json())["deliveries"]]
                if finished not in ids:
                    break
                await asyncio.sleep(0.05)
            assert ids == [waiting]
    finally:
        assert server.stop() == 0
    assert "retention: pruned 1 deliveries and 1 events older than 30 days" in server.log()
    with sqlite3.connect(tmp_path / "webhooks.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM delivery_attempts").fetchone() == (2,)
