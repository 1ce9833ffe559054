"""Ordered delivery in the Store, on both databases: an ordered webhook's deliveries are
claimed one at a time in publish order, whoever publishes and whoever claims."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from mlflow_webhooks.server import ordering
from mlflow_webhooks.server.delivery.settings import Change, DeliverySettings
from mlflow_webhooks.server.store import (
    AttemptRecord,
    DeliveryStatus,
    Outcome,
    Outgoing,
    Store,
    now_ms,
)
from mlflow_webhooks.server.store import models as m
from tests.databases import POSTGRES, Database
from tests.test_store_databases import event, webhook

LEASE_MS = 60_000
ATTEMPT = AttemptRecord(1, 0, 1, 200, "ok", None)


def set_ordered(store: Store, webhook_id: str, ordered: bool | None) -> DeliverySettings | None:
    return store.change_delivery_settings(webhook_id, Change(ordered=ordered))


def ordered_webhook(store: Store) -> str:
    hook = store.create_webhook(webhook())
    assert set_ordered(store, hook.id, True) == DeliverySettings(ordered=True)
    return hook.id


def claim(store: Store, outcomes: Sequence[Outcome] = (), every_turn: bool = False) -> list[str]:
    """Writes `outcomes` and claims whatever is due, as the worker's round does."""
    now = now_ms()
    got = store.exchange(list(outcomes), [], "me", now, LEASE_MS, 100, every_turn=every_turn)
    return [o.delivery_id for o in got]


def ended(delivery_id: str, status: DeliveryStatus, webhook_id: str | None) -> Outcome:
    return Outcome(delivery_id, ATTEMPT, status, None, passes_turn=webhook_id)


def sequences(ids: list[str]) -> list[int | None]:
    rows = {d.id: d.sequence for d in m.Delivery.select().where(m.Delivery.id.in_(ids))}
    return [rows[d] for d in ids]


def test_places_number_on_and_only_a_first_delivery_with_nothing_pending_goes() -> None:
    assert ordering.places(0, 3, pending=False) == [
        ordering.Place(1, waits=False),
        ordering.Place(2, waits=True),
        ordering.Place(3, waits=True),
    ]
    assert ordering.places(41, 2, pending=True) == [
        ordering.Place(42, waits=True),
        ordering.Place(43, waits=True),
    ]
    assert ordering.places(7, 0, pending=False) == []


def test_one_at_a_time_in_publish_order_and_a_retry_holds_the_rest(store: Store) -> None:
    hook = ordered_webhook(store)
    store.create_webhook(webhook())  # an unordered one beside it
    first = store.publish_many([event() for _ in range(3)])
    second = store.publish_many([event() for _ in range(2)])
    ours = [next(d for d in ids if store.get_delivery(d).webhook_id == hook) for _, ids in first]
    ours += [next(d for d in ids if store.get_delivery(d).webhook_id == hook) for _, ids in second]
    assert sequences(ours) == [1, 2, 3, 4, 5]
    theirs = [d for _, ids in first + second for d in ids if d not in ours]
    assert sequences(theirs) == [None] * 5
    # The unordered webhook's five all go; of the ordered one's, the first.
    assert sorted(claim(store)) == sorted([ours[0], *theirs])
    waiting = store.get_delivery(ours[1])
    assert waiting.status == DeliveryStatus.PENDING and waiting.next_attempt_timestamp is None
    # Its success gives the next its turn, claimed in the same transaction.
    assert claim(store, [ended(ours[0], DeliveryStatus.SUCCEEDED, hook)]) == [ours[1]]
    # A retry keeps the turn: nothing else goes while it waits, however often one claims.
    retry = Outcome(ours[1], ATTEMPT, DeliveryStatus.PENDING, now_ms() + 60_000, passes_turn=None)
    assert claim(store, [retry]) == []
    assert claim(store, every_turn=True) == []
    # Redelivered by hand and failed: still its turn. Failed for good: the next goes.
    failed = replace(ATTEMPT, response_status=500)
    store.record_redelivery(ours[1], failed, lambda _: None, None, hook)
    assert claim(store) == []
    assert store.record_redelivery(ours[1], failed, lambda _: DeliveryStatus.FAILED, None, hook)
    assert claim(store) == [ours[2]]
    assert claim(store, [ended(ours[2], DeliveryStatus.FAILED, hook)]) == [ours[3]]
    assert claim(store, [ended(ours[3], DeliveryStatus.SUCCEEDED, hook)]) == [ours[4]]
    assert claim(store, [ended(ours[4], DeliveryStatus.SUCCEEDED, hook)]) == []
    # Nothing pending: the next publish goes at once.
    _, later = store.publish(event())
    [mine] = [d for d in later if store.get_delivery(d).webhook_id == hook]
    assert sequences([mine]) == [6]
    assert mine in claim(store)


def test_turning_ordering_on_queues_behind_what_is_pending_and_off_lets_all_go(
    store: Store,
) -> None:
    hook = store.create_webhook(webhook()).id
    assert store.get_delivery_settings(hook) == DeliverySettings(ordered=False)
    before = [ids[0] for _, ids in store.publish_many([event() for _ in range(2)])]
    [out] = store.claim("me", now_ms(), LEASE_MS, 1)
    assert not out.settings.ordered
    assert set_ordered(store, hook, True) == DeliverySettings(ordered=True)
    assert set_ordered(store, hook, None) == DeliverySettings(ordered=True)  # None keeps it
    after = [ids[0] for _, ids in store.publish_many([event() for _ in range(3)])]
    # Published before: as before (the second is still due). After: behind them, in order.
    assert claim(store) == [before[1]]
    assert sequences(after) == [1, 2, 3]
    # The first ended as claimed before ordering was on: its process did not know to pass
    # the turn. The second ends knowing. Neither's end lets the first waiting one go while
    # the other is out; the every_turn round does once both are done.
    assert claim(store, [ended(out.delivery_id, DeliveryStatus.SUCCEEDED, None)]) == []
    assert claim(store, [ended(before[1], DeliveryStatus.FAILED, None)]) == []
    assert claim(store, every_turn=True) == [after[0]]
    # Off: every waiting delivery is due at once.
    assert set_ordered(store, hook, False) == DeliverySettings(ordered=False)
    assert sorted(claim(store)) == sorted(after[1:])
    assert set_ordered(store, "no-such-webhook", True) is None


def test_version_10_gains_the_line_of_ordered_webhooks(database: Database, store: Store) -> None:
    hook = store.create_webhook(webhook()).id
    _, [delivery_id] = store.publish(event())
    store.db.execute_sql(f'DROP INDEX "{m.WAITING_INDEX}"')
    store.db.execute_sql("ALTER TABLE deliveries DROP COLUMN sequence")
    store.db.execute_sql("ALTER TABLE webhooks DROP COLUMN last_sequence")
    m.SchemaVersion.update(version=10).execute()
    store.close()
    again = Store(database.url, database.secret_key)
    again.open()
    try:
        assert again.get_delivery_settings(hook) == DeliverySettings(ordered=False)
        assert [o.delivery_id for o in again.claim("me", now_ms(), LEASE_MS, 10)] == [delivery_id]
        assert set_ordered(again, hook, True) == DeliverySettings(ordered=True)
        [(_, [first]), (_, [second])] = again.publish_many([event(), event()])
        assert sequences([first, second]) == [1, 2]
    finally:
        again.close()


def test_publishers_and_workers_at_once_never_overlap_and_never_stall(store: Store) -> None:
    """Two publishers and two workers in threads of their own (on PostgreSQL, connections of
    their own), the workers' results random (success, retry, final failure) and without the
    every_turn rounds: each delivery of the ordered webhook is claimed only after the one
    before it ended, each publisher's events go in the order it published them, and every
    delivery ends."""
    hook = ordered_webhook(store)
    store.create_webhook(webhook())  # an unordered one beside it, for the same events
    per_publisher, publishers, workers = 30, 2, 2
    clock = itertools.count()  # next() is atomic: one order of what the threads did
    claimed_at: dict[str, int] = {}  # delivery -> its first claim (after the call returned)
    ending_at: dict[str, int] = {}  # delivery -> before the call that wrote its end
    published: dict[int, list[str]] = defaultdict(list)
    done = threading.Event()
    errors: list[BaseException] = []

    def publisher(n: int) -> None:
        for _ in range(per_publisher):
            _, ids = store.run(None, store.publish, event())
            published[n] += ids

    def worker(name: str) -> None:
        rng = random.Random(name)
        outcomes: list[Outcome] = []
        while not done.is_set():
            for o in outcomes:
                if o.status != DeliveryStatus.PENDING:
                    ending_at[o.delivery_id] = next(clock)
            got: list[Outgoing] = store.run(
                None, store.exchange, outcomes, [], name, now_ms(), LEASE_MS, 8, None
            )
            at = next(clock)
            for item in got:
                claimed_at.setdefault(item.delivery_id, at)
            time.sleep(rng.uniform(0, 0.002))  # sending
            outcomes = []
            for item in got:
                roll = rng.random()
                if roll < 0.2 and item.settings.ordered:
                    retry = now_ms() + rng.randint(0, 5)
                    outcomes.append(
                        Outcome(item.delivery_id, ATTEMPT, DeliveryStatus.PENDING, retry)
                    )
                else:
                    status = DeliveryStatus.FAILED if roll < 0.3 else DeliveryStatus.SUCCEEDED
                    turn = item.webhook_id if item.settings.ordered else None
                    outcomes.append(ended(item.delivery_id, status, turn))

    def guarded(fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except BaseException as e:
            errors.append(e)
            done.set()

    threads = [threading.Thread(target=guarded, args=(worker, f"w{i}")) for i in range(workers)]
    threads += [threading.Thread(target=guarded, args=(publisher, i)) for i in range(publishers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    total = publishers * per_publisher
    while not done.is_set() and time.monotonic() < deadline:
        finished = (
            m.Delivery.select()
            .where(
                (m.Delivery.webhook_id == hook)
                & m.Delivery.status.in_([DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED])
            )
            .count()
        )
        if finished == total:
            break
        time.sleep(0.05)
    done.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    ours = {d.id: d.sequence for d in m.Delivery.select().where(m.Delivery.webhook_id == hook)}
    assert len(ours) == total
    assert set(ending_at) >= set(ours), "some delivery of the ordered webhook never ended"
    line = sorted(ours, key=lambda d: ours[d])
    assert [ours[d] for d in line] == list(range(1, total + 1))
    for before, after in itertools.pairwise(line):
        assert claimed_at[after] > ending_at[before], (ours[before], ours[after])
    for ids in published.values():
        mine = [ours[d] for d in ids if d in ours]
        assert mine == sorted(mine)


# PostgreSQL only: SQLite's one writer at a time leaves no such race.
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_turn_passed_while_a_publish_commits_reaches_its_delivery(
    database: Database, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the webhook's row lock closes (PostgreSQL; SQLite's write lock closes it
    too): a publish has seen the webhook's only delivery still out, so its own waits; that
    delivery's result is written before the publish commits. The result's turn must reach
    the new delivery rather than find nothing waiting and leave it waiting for ever."""
    import psycopg

    from mlflow_webhooks.server.store import store as store_module

    hook = ordered_webhook(store)
    _, [first] = store.publish(event())
    [out] = store.claim("me", now_ms(), LEASE_MS, 10)
    checked, go = threading.Event(), threading.Event()
    publishing = threading.current_thread().name + "-publisher"
    sql = store._sql

    def pausing(text: str, params: Sequence[object] = ()) -> object:
        cursor = sql(text, params)
        if text == store_module.ANY_PENDING and threading.current_thread().name == publishing:
            checked.set()
            go.wait(30)
        return cursor

    monkeypatch.setattr(store, "_sql", pausing)
    answers: list[object] = []
    publisher = threading.Thread(
        target=lambda: answers.append(store.publish(event())), name=publishing
    )
    worker = threading.Thread(
        target=lambda: store.record([ended(first, DeliveryStatus.SUCCEEDED, hook)])
    )
    publisher.start()
    assert checked.wait(30)
    worker.start()
    # The result's transaction waits on the webhook's row; were it not to, it would finish.
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            waiting = admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.01)
    go.set()
    publisher.join(30)
    worker.join(30)
    [(_, [second])] = answers
    assert out.delivery_id == first
    assert claim(store) == [second]
