"""The Store on both databases, each test on a fresh schema: what every replica relies on."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from mlflow_webhooks.server import filters
from mlflow_webhooks.server.delivery import settings as delivery_settings
from mlflow_webhooks.server.errors import AlreadyExists, InvalidArgument
from mlflow_webhooks.server.store import (
    SCHEMA_VERSION,
    AttemptRecord,
    DeliveryStatus,
    EventRecord,
    Outcome,
    Store,
    WebhookRecord,
    WebhookStatus,
    now_ms,
)
from mlflow_webhooks.server.store.secrets import SecretKeyError
from tests.databases import POSTGRES, Database, fresh

EVENT = (2, 1)  # MODEL_VERSION, CREATED
OTHER = (5, 1)  # PROMPT, CREATED


def webhook(
    *events: tuple[int, int], status: int = WebhookStatus.ACTIVE, ts: int | None = None
) -> WebhookRecord:
    now = ts if ts is not None else now_ms()
    return WebhookRecord(
        id=str(uuid.uuid4()),
        name="w",
        url="https://example.com/h",
        events=list(events or [EVENT]),
        status=status,
        creation_timestamp=now,
        last_updated_timestamp=now,
        secret="s3cret",
    )


def event(
    key: str | None = None, kind: tuple[int, int] = EVENT, data: str = '{"n": 1, "m": "x"}'
) -> EventRecord:
    return EventRecord(
        id=str(uuid.uuid4()),
        event=kind,
        data=data,
        occurred_at="2026-01-01T00:00:00+00:00",
        creation_timestamp=now_ms(),
        idempotency_key=key,
    )


def test_round_trip_and_secret(store: Store) -> None:
    created = store.create_webhook(webhook(EVENT, OTHER))
    assert store.get_webhook(created.id) == created
    assert store.get_webhook(created.id).secret == "s3cret"
    updated = store.update_webhook(created.id, lambda r: replace(r, name="x", events=[OTHER]))
    assert updated is not None and updated.last_updated_timestamp > created.last_updated_timestamp
    assert store.get_webhook(created.id).events == [OTHER]
    assert store.delete_webhook(created.id) and not store.delete_webhook(created.id)
    assert store.get_webhook(created.id) is None


def test_pages_neither_skip_nor_repeat_under_changes(store: Store) -> None:
    base = now_ms()
    ids = [store.create_webhook(webhook(ts=base - i)).id for i in range(10)]  # newest first
    first = store.list_webhooks(4, None)
    assert [w.id for w in first.items] == ids[:4]
    store.create_webhook(webhook(ts=base + 100))  # newer than every page: not seen
    store.delete_webhook(ids[0])  # already seen
    store.delete_webhook(ids[5])  # not yet seen: skipped, as it no longer exists
    rest = store.list_webhooks(100, first.next_token)
    assert [w.id for w in rest.items] == [i for i in ids[4:] if i != ids[5]]
    assert rest.next_token is None


def test_publish_fans_out_to_active_subscribers_only(store: Store) -> None:
    active = store.create_webhook(webhook(EVENT))
    store.create_webhook(webhook(EVENT, status=WebhookStatus.DISABLED))
    store.create_webhook(webhook(OTHER))
    event_id, deliveries = store.publish(event())
    assert len(deliveries) == 1
    [claimed] = store.claim("me", now_ms(), 60_000, 10)
    assert (claimed.delivery_id, claimed.webhook_id, claimed.secrets.current) == (
        deliveries[0],
        active.id,
        "s3cret",
    )
    assert store.get_delivery(deliveries[0]).event_id == event_id


def test_idempotency_key(store: Store) -> None:
    store.create_webhook(webhook())
    first = store.publish(event("k"))
    assert store.publish(event("k")) == first
    assert store.publish(event("other")) != first


def test_a_key_reused_for_another_event_is_refused_and_stores_nothing(store: Store) -> None:
    store.create_webhook(webhook(EVENT, OTHER))
    first = store.publish(event("k"))
    # The same event, its data's keys in another order: the first answer.
    assert store.publish(event("k", data='{"m": "x", "n": 1}')) == first
    for other in (event("k", data='{"n": 2, "m": "x"}'), event("k", kind=OTHER)):
        with pytest.raises(AlreadyExists) as e:
            store.publish(other)
        assert "'k'" in e.value.message and first[0] in e.value.message
    assert store.backlog()[0] == 1
    # In one batch: the key's first event is stored, a different one with it refused alone.
    a, b, c = event("b"), event("b", data='{"n": 3}'), event()
    answers = store.publish_many([a, b, c])
    assert answers[0][0] == a.id and isinstance(answers[1], AlreadyExists)
    assert answers[2][0] == c.id
    assert store.backlog()[0] == 3


def test_a_batch_stores_each_event_once_and_keys_answer_their_first_event(store: Store) -> None:
    hook = store.create_webhook(webhook())
    earlier = store.publish(event("known"))
    batch = [event("known"), event("new"), event(), event("new"), event(kind=OTHER), event()]
    answers = store.publish_many(batch)
    assert answers[0] == earlier
    assert answers[3] == answers[1]  # the key's first event in this very batch
    assert answers[1][0] == batch[1].id
    fresh_events = {answers[i][0] for i in (1, 2, 5)}
    assert len(fresh_events) == 3
    assert answers[4] == (batch[4].id, [])  # nobody subscribes to OTHER
    for event_id, delivery_ids in answers:
        stored = store.list_deliveries(10, None, event_id=event_id).items
        assert sorted(d.id for d in stored) == sorted(delivery_ids)
        assert all(d.webhook_id == hook.id for d in stored)
    # Deliveries of the earlier event plus one for each of the three new ones.
    assert store.backlog()[0] == 4


def test_one_publishers_events_are_claimed_in_the_order_it_published_them(store: Store) -> None:
    store.create_webhook(webhook())
    base = now_ms() - 1000
    # One publisher's events, in one batch and across batches, as the group commit forms them.
    ordered = [replace(event(), creation_timestamp=base + i) for i in range(6)]
    answers = store.publish_many(ordered[:4]) + store.publish_many(ordered[4:])
    claimed = store.claim("me", now_ms(), 60_000, 100)
    assert [o.delivery_id for o in claimed] == [ids[0] for _, ids in answers]


def test_a_claim_takes_at_most_the_room_each_webhook_has(store: Store) -> None:
    one, two = store.create_webhook(webhook()), store.create_webhook(webhook())
    store.publish_many([event() for _ in range(6)])
    room = {one.id: 2, two.id: 0}
    claimed = store.claim("me", now_ms(), 60_000, 100, lambda hook, _: room[hook])
    assert [o.webhook_id for o in claimed] == [one.id, one.id]
    # What was left is not leased: the next claim takes it.
    assert len(store.claim("other", now_ms(), 60_000, 100)) == 10


def test_one_webhooks_backlog_does_not_hide_the_others(store: Store) -> None:
    """A busy (or full) webhook's due rows, older than everyone's and more than the claim's
    window: the claim still finds the other webhooks' rows, oldest first."""
    backlogged = store.create_webhook(webhook(OTHER))
    one, two = store.create_webhook(webhook(EVENT)), store.create_webhook(webhook(EVENT))
    now = now_ms()
    store.publish_many(
        [replace(event(kind=OTHER), creation_timestamp=now - 10_000 + i) for i in range(30)]
    )
    newer = [replace(event(), creation_timestamp=now - 100 + i) for i in range(3)]
    fanned = [ids for _, ids in store.publish_many(newer)]
    busy = {backlogged.id}  # no room: as the dispatcher says of a busy webhook
    claimed = store.claim("me", now, 60_000, 4, lambda hook, most: 0 if hook in busy else most)
    assert {o.webhook_id for o in claimed} == {one.id, two.id}
    assert {o.delivery_id for o in claimed} == set(fanned[0] + fanned[1])
    store.release("me", [o.delivery_id for o in claimed])
    # Not busy but with room for one: that one, then the others' oldest.
    room = {backlogged.id: 1, one.id: 8, two.id: 8}
    claimed = store.claim("me", now, 60_000, 4, lambda hook, _: room[hook])
    assert [o.webhook_id for o in claimed].count(backlogged.id) == 1
    assert {o.delivery_id for o in claimed[1:]} <= set(fanned[0] + fanned[1])
    assert len(claimed) == 4


def test_claims_never_overlap_and_leases_expire(store: Store) -> None:
    store.create_webhook(webhook())
    published = {d for _ in range(40) for d in store.publish(event())[1]}
    now = now_ms()
    got: list[list[str]] = []

    def claim(owner: str) -> None:
        got.append([o.delivery_id for o in store.claim(owner, now, 60_000, 25)])

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got[0] + got[1]) == sorted(published)
    assert not set(got[0]) & set(got[1])
    assert store.claim("w3", now, 60_000, 100) == []
    # A dead owner's rows come back once its lease runs out.
    assert len(store.claim("w3", now + 60_001, 60_000, 100)) == 40


def test_record_batch_and_backlog(store: Store) -> None:
    hook = store.create_webhook(webhook())
    _, ids = store.publish(event())
    _, more = store.publish(event())
    store.claim("me", now_ms(), 60_000, 10)
    attempt = AttemptRecord(1, now_ms(), 5, 503, "busy", "receiver answered HTTP 503")
    store.record(
        [
            Outcome(ids[0], attempt, DeliveryStatus.PENDING, now_ms() + 10_000),
            Outcome(
                more[0], replace(attempt, response_status=410), DeliveryStatus.FAILED, None, hook.id
            ),
        ]
    )
    logged = store.get_delivery(ids[0])
    assert [a.response_body for a in logged.attempts] == ["busy"]
    assert store.get_delivery(more[0]).status == DeliveryStatus.FAILED
    # The 410 disabled the webhook, which cancelled its delivery waiting for a retry.
    assert store.get_webhook(hook.id).status == WebhookStatus.DISABLED
    assert logged.status == DeliveryStatus.CANCELLED
    assert store.backlog() == (0, None)


def test_attempts_written_at_once_each_get_their_own_number(store: Store) -> None:
    """Redelivers in eight threads and the worker's own result, all at once: nine attempts,
    numbered 1 to 9, and the worker's result does not undo a redeliver's success."""
    store.create_webhook(webhook())
    _, [delivery_id] = store.publish(event())
    [item] = store.claim("me", now_ms(), 60_000, 10)
    ok = AttemptRecord(0, now_ms(), 5, 200, "ok", None)
    failed = AttemptRecord(1, now_ms(), 5, 503, "busy", "receiver answered HTTP 503")
    start = threading.Barrier(9)

    def redeliver() -> None:
        start.wait()
        store.run(
            None, store.record_redelivery, delivery_id, ok, lambda _: DeliveryStatus.SUCCEEDED
        )

    def worker() -> None:
        start.wait()
        retry = Outcome(item.delivery_id, failed, DeliveryStatus.PENDING, now_ms() + 60_000)
        store.run(None, store.record, [retry])

    threads = [threading.Thread(target=redeliver) for _ in range(8)]
    threads.append(threading.Thread(target=worker))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    logged = store.get_delivery(delivery_id)
    assert [a.number for a in logged.attempts] == list(range(1, 10))
    assert sorted(a.response_status for a in logged.attempts) == [200] * 8 + [503]
    assert logged.status == DeliveryStatus.SUCCEEDED
    assert logged.next_attempt_timestamp is None


def test_delete_cancels_pending(store: Store) -> None:
    hook = store.create_webhook(webhook())
    _, ids = store.publish(event())
    assert store.backlog()[0] == 1
    store.delete_webhook(hook.id)
    assert store.get_delivery(ids[0]).status == DeliveryStatus.CANCELLED
    page = store.list_deliveries(10, None, webhook_id=hook.id)
    assert [d.id for d in page.items] == ids


def test_schema_version_and_reopen(database: Database, store: Store) -> None:
    store.create_webhook(webhook())
    again = Store(database.url, database.secret_key)
    again.open()  # a second replica starting on the same schema
    assert len(again.list_webhooks(10, None).items) == 1
    from mlflow_webhooks.server.store import models as m

    assert m.SchemaVersion.select().first().version == SCHEMA_VERSION
    again.close()


def test_version_2_gains_the_payload_column_and_its_events_still_have_a_body(
    database: Database, store: Store
) -> None:
    from mlflow_webhooks.server.delivery.dispatcher import body_of
    from mlflow_webhooks.server.delivery.sender import payload
    from mlflow_webhooks.server.store import models as m

    store.create_webhook(webhook())
    _, [delivery_id] = store.publish(event())  # stored without a payload, as version 2 did
    store.db.execute_sql("ALTER TABLE events DROP COLUMN payload")
    m.SchemaVersion.update(version=2).execute()
    store.close()
    again = Store(database.url, database.secret_key)
    again.open()
    assert "payload" in {c.name for c in again.db.get_columns("events")}
    assert m.SchemaVersion.select().first().version == SCHEMA_VERSION
    item = again.outgoing(delivery_id)
    assert item is not None and item.payload is None
    assert body_of(item) == payload(EVENT, {"n": 1, "m": "x"}, "2026-01-01T00:00:00+00:00")
    again.close()


def test_version_5_gains_the_redeliver_count_as_zero(database: Database, store: Store) -> None:
    from mlflow_webhooks.server.store import models as m

    store.create_webhook(webhook())
    _, [delivery_id] = store.publish(event())
    _, [tried] = store.publish(event())
    attempt = AttemptRecord(1, now_ms(), 5, 503, "busy", "receiver answered HTTP 503")
    store.record([Outcome(tried, attempt, DeliveryStatus.FAILED, None)])
    store.db.execute_sql("ALTER TABLE deliveries DROP COLUMN manual_attempts")
    m.SchemaVersion.update(version=5).execute()
    store.close()
    again = Store(database.url, database.secret_key)
    again.open()
    try:
        # Adding the column kept every row, and the attempts that hang on them.
        assert [a.response_body for a in again.get_delivery(tried).attempts] == ["busy"]
        [claimed] = again.claim("me", now_ms(), 60_000, 10)
        assert (claimed.delivery_id, claimed.manual_attempts) == (delivery_id, 0)
        _, more = again.publish(event())  # rows made after the upgrade start at 0 too
        assert again.outgoing(more[0]).manual_attempts == 0  # type: ignore[union-attr]
    finally:
        again.close()


def test_version_3_gains_the_key_hash_and_keys_used_before_still_hold(
    database: Database, store: Store
) -> None:
    from mlflow_webhooks.server.store import models as m

    store.create_webhook(webhook())
    first = store.publish(event("old"))  # its hash is dropped below, as version 3 had none
    store.db.execute_sql("ALTER TABLE events DROP COLUMN idempotency_hash")
    m.SchemaVersion.update(version=3).execute()
    store.close()
    again = Store(database.url, database.secret_key)
    again.open()
    try:
        assert "idempotency_hash" in {c.name for c in again.db.get_columns("events")}
        assert again.publish(event("old", data='{"m": "x", "n": 1}')) == first
        with pytest.raises(AlreadyExists):
            again.publish(event("old", data='{"n": 2}'))
    finally:
        again.close()


def test_postgres_needs_the_key(tmp_path: Path) -> None:
    with (
        fresh("postgresql", tmp_path) as database,
        pytest.raises(SecretKeyError, match="WEBHOOKS_SECRET_KEY is required"),
    ):
        Store(database.url, None)


def test_publish_many_matches_each_event_against_each_filter(store: Store) -> None:
    """One batch, several filtered webhooks: each event gets a delivery for exactly the
    webhooks whose filter takes it; a filter set, then cleared, applies to later publishes."""
    fraud = store.create_webhook(webhook(EVENT))
    churn = store.create_webhook(webhook(EVENT))
    plain = store.create_webhook(webhook(EVENT))
    assert store.set_filter(fraud.id, filters.Filter(names=("fraud-*",)))
    assert store.set_filter(churn.id, filters.Filter(names=("churn", "churn-v?")))
    assert not store.set_filter(str(uuid.uuid4()), filters.Filter(names=("x",)))
    assert store.get_filter(fraud.id) == filters.Filter(names=("fraud-*",))
    assert store.get_filter(plain.id) == filters.NO_FILTER
    assert store.get_filter(str(uuid.uuid4())) is None
    names = ["fraud-1", "churn", "churn-v2", "other"]
    batch = [event(data=json.dumps({"name": name})) for name in names]
    published = store.publish_many(batch)
    takers = []
    for (_, delivery_ids), _name in zip(published, names, strict=True):
        got = {store.get_delivery(d).webhook_id for d in delivery_ids}
        takers.append(got)
    assert takers == [
        {fraud.id, plain.id},
        {churn.id, plain.id},
        {churn.id, plain.id},
        {plain.id},
    ]
    assert store.set_filter(fraud.id, filters.NO_FILTER)
    assert store.get_filter(fraud.id) == filters.NO_FILTER
    _, later = store.publish(event(data=json.dumps({"name": "other"})))
    assert {store.get_delivery(d).webhook_id for d in later} == {fraud.id, plain.id}


def test_webhook_to_test_reads_the_webhook_its_filter_and_settings(store: Store) -> None:
    """testWebhook's one read: the webhook as get_webhook answers it (all its events, in
    order), with its filter and delivery settings, set or not."""
    own, plain = store.create_webhook(webhook(EVENT, OTHER)), store.create_webhook(webhook())
    spec = filters.Filter(names=("fraud-*",))
    assert store.set_filter(own.id, spec)
    settings = delivery_settings.DeliverySettings(None, 2.5, 3)
    assert store.change_delivery_settings(own.id, delivery_settings.Change(None, 2.5, 3))
    assert store.webhook_to_test(own.id) == (store.get_webhook(own.id), spec, settings)
    found = store.webhook_to_test(plain.id)
    none = (filters.NO_FILTER, delivery_settings.NO_SETTINGS)
    assert found == (store.get_webhook(plain.id), *none)
    assert found is not None and found[0].events == [EVENT] and found[0].secret == "s3cret"
    assert store.webhook_to_test(str(uuid.uuid4())) is None


def test_delivery_settings_reach_the_next_claim_of_any_replica(
    database: Database, store: Store
) -> None:
    """Settings set through one Store (one replica, or one of --workers N) are what another
    replica's very next claim uses: each webhook's maximum for its room, its settings on the
    rows it leases, and a lease long enough for its own timeout."""
    capped, plain = store.create_webhook(webhook()), store.create_webhook(webhook())
    own = delivery_settings.DeliverySettings((1.0, 2.0), 40.0, 2)
    change = delivery_settings.Change((1.0, 2.0), 40.0, 2)
    assert store.change_delivery_settings(capped.id, change) == own
    assert store.change_delivery_settings(str(uuid.uuid4()), change) is None
    assert store.get_delivery_settings(capped.id) == own
    assert store.get_delivery_settings(plain.id) == delivery_settings.NO_SETTINGS
    assert store.get_delivery_settings(str(uuid.uuid4())) is None
    store.publish_many([event() for _ in range(5)])
    maxima: dict[str, int] = {}

    def room(hook: str, maximum: int) -> int:
        maxima[hook] = maximum
        return maximum

    now = now_ms()
    # The models are bound to the Store opened last: each replica here is opened after the
    # one before it is done with.
    store.close()
    replica = Store(database.url, database.secret_key)
    replica.open()
    try:
        claimed = replica.claim("replica", now, 25_000, 100, room, timeout_ms=15_000)
        leases = dict(replica.db.execute_sql('SELECT "id", "lease_until" FROM "deliveries"'))
    finally:
        replica.close()
    assert maxima == {capped.id: 2, plain.id: delivery_settings.DEFAULT_MAX_CONCURRENCY}
    mine = [o for o in claimed if o.webhook_id == capped.id]
    assert len(mine) == 2 and all(o.settings == own for o in mine)
    others = [o for o in claimed if o.webhook_id != capped.id]
    assert len(others) == 5 and all(o.settings == delivery_settings.NO_SETTINGS for o in others)
    # 25 s covers the server's 15 s timeout; the capped webhook's 40 s gets 25 s more.
    assert {leases[o.delivery_id] - now for o in mine} == {50_000}
    assert {leases[o.delivery_id] - now for o in others} == {25_000}
    # Cleared by a third: the next claim sees no settings, and so the server's default
    # maximum, as that Store is given it (--max-webhook-concurrency 3, in the server).
    third = Store(database.url, database.secret_key, default_concurrency=3)
    third.open()
    try:
        reset = delivery_settings.Change((), 0, 0)
        assert third.change_delivery_settings(capped.id, reset) == delivery_settings.NO_SETTINGS
        maxima.clear()
        [again] = third.claim("third", now, 25_000, 1, room)
    finally:
        third.close()
    assert again.settings == delivery_settings.NO_SETTINGS
    assert maxima[capped.id] == 3


def test_rotate_keeps_the_old_secret_for_its_window_then_forgets_it(store: Store) -> None:
    """A rotation keeps the replaced secret, sealed, until its window's end; a claim after the
    window and the sweep each remove it, and never one whose window has not ended."""
    hook = store.create_webhook(webhook(EVENT))
    other = store.create_webhook(webhook(EVENT))
    now = now_ms()
    rotated = store.rotate_secret(hook.id, "new-1", now + 60_000)
    assert rotated is not None
    assert (rotated.secret, rotated.previous_secret) == ("new-1", "s3cret")
    assert rotated.previous_secret_until == now + 60_000
    assert rotated.last_updated_timestamp > hook.last_updated_timestamp
    assert store.rotate_secret(str(uuid.uuid4()), "x", None) is None
    with pytest.raises(InvalidArgument, match="the webhook's current secret"):
        store.rotate_secret(hook.id, "new-1", now + 60_000)
    store.rotate_secret(other.id, "other-new", now + 60_000)
    store.publish(event())
    [health] = store.webhook_health([hook.id], 0)
    assert health.previous_secret_until == now + 60_000  # the window, while it lasts
    claimed = {o.webhook_id: o.secrets for o in store.claim("me", now + 1_000, 60_000, 9)}
    assert (claimed[hook.id].current, claimed[hook.id].previous) == ("new-1", "s3cret")
    assert store.forget_expired_secrets(now + 59_999) == 0  # the window has not ended
    # The window ends: the next claim for the webhook forgets its old secret, and the sweep
    # the other's.
    store.publish(event())
    store.claim("me", now + 60_000, 60_000, 1, lambda hook, most: 0 if hook == other.id else most)
    assert store.get_webhook(hook.id).previous_secret is None
    assert store.get_webhook(other.id).previous_secret == "s3cret"
    assert store.forget_expired_secrets(now + 60_000) == 1
    assert store.get_webhook(other.id).previous_secret is None
    assert store.forget_expired_secrets(now + 60_000) == 0


def test_rotating_again_replaces_the_old_secret_and_update_forgets_it(store: Store) -> None:
    hook = store.create_webhook(webhook(EVENT))
    now = now_ms()
    store.rotate_secret(hook.id, "second", now + 60_000)
    again = store.rotate_secret(hook.id, "third", now + 120_000)
    assert again is not None
    # One overlap at a time: the secret before the first rotation is gone.
    assert (again.secret, again.previous_secret, again.previous_secret_until) == (
        "third",
        "second",
        now + 120_000,
    )
    # No window: the replaced secret is not kept at all.
    plain = store.rotate_secret(hook.id, "fourth", None)
    assert plain is not None and (plain.secret, plain.previous_secret) == ("fourth", None)
    assert plain.previous_secret_until is None
    store.rotate_secret(hook.id, "fifth", now + 60_000)
    # updateWebhook's secret change is a rotation with no overlap.
    updated = store.update_webhook(hook.id, lambda r: replace(r, secret="sixth"))
    assert updated is not None and (updated.secret, updated.previous_secret) == ("sixth", None)
    found = store.get_webhook(hook.id)
    assert (found.secret, found.previous_secret, found.previous_secret_until) == (
        "sixth",
        None,
        None,
    )
    # A change that leaves the secret as it is keeps the window.
    store.rotate_secret(hook.id, "seventh", now + 60_000)
    store.update_webhook(hook.id, lambda r: replace(r, name="renamed"))
    assert store.get_webhook(hook.id).previous_secret == "sixth"
    # A webhook that signs nothing has no old secret to keep.
    unsigned = store.create_webhook(replace(webhook(EVENT), secret=None))
    rotated = store.rotate_secret(unsigned.id, "first", now + 60_000)
    assert rotated is not None and (rotated.secret, rotated.previous_secret) == ("first", None)
    assert rotated.previous_secret_until is None


def test_forgetting_passes_over_a_webhook_row_another_transaction_holds(tmp_path: Path) -> None:
    """PostgreSQL: forgetting never waits for a webhook row another transaction holds (a
    claim waiting there on a disable that waits for the claim's deliveries would deadlock);
    the next claim or sweep forgets that one."""
    import psycopg

    with fresh("postgresql", tmp_path) as database:
        store = Store(database.url, database.secret_key)
        store.open()
        try:
            held, free = store.create_webhook(webhook(EVENT)), store.create_webhook(webhook(EVENT))
            now = now_ms()
            for hook in (held, free):
                store.rotate_secret(hook.id, "new", now + 1)
            with psycopg.connect(POSTGRES) as conn:  # one transaction, held open
                conn.execute(f"SET search_path TO {database.url.rsplit('%3D', 1)[1]}")
                conn.execute("SELECT id FROM webhooks WHERE id = %s FOR UPDATE", (held.id,))
                assert store.forget_expired_secrets(now + 1) == 1
                assert store.get_webhook(free.id).previous_secret is None
                assert store.get_webhook(held.id).previous_secret == "s3cret"
            assert store.forget_expired_secrets(now + 1) == 1
            assert store.get_webhook(held.id).previous_secret is None
        finally:
            store.close()
