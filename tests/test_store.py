"""server.store.Store directly on a temporary SQLite file: round trips, secrets at rest,
the key file, keyset pagination, the schema version and WAL. One test also starts the real
server on a database whose secrets its key cannot open."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.server.errors import Code, InvalidArgument
from mlflow_webhooks.server.store import (
    SCHEMA_VERSION,
    EventRecord,
    Store,
    WebhookRecord,
    WriteLockBusy,
    now_ms,
)
from mlflow_webhooks.server.store import models as m
from mlflow_webhooks.server.store.secrets import SecretKeyError
from tests.support import ROOT

MV_CREATED = (pb.MODEL_VERSION, pb.CREATED)
RM_CREATED = (pb.REGISTERED_MODEL, pb.CREATED)
TAG_SET = (pb.MODEL_VERSION_TAG, pb.SET)


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@contextmanager
def opened(db: Path, key: str | None = None) -> Iterator[Store]:
    store = Store(url_of(db), key)
    try:
        store.open()
        yield store
    finally:
        store.close()


def record(
    secret: str | None = None,
    ts: int | None = None,
    events: list[tuple[int, int]] | None = None,
    **kwargs: object,
) -> WebhookRecord:
    now = now_ms() if ts is None else ts
    fields: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "name": "hook",
        "url": "https://example.com/hook",
        "events": events or [MV_CREATED],
        "status": pb.ACTIVE,
        "creation_timestamp": now,
        "last_updated_timestamp": now,
        "secret": secret,
        **kwargs,
    }
    return WebhookRecord(**fields)  # type: ignore[arg-type]


def raw(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def every_file_byte(db: Path) -> bytes:
    """The database and its WAL and shared-memory files, whatever exists of them."""
    return b"".join(
        p.read_bytes() for p in sorted(db.parent.iterdir()) if p.name.startswith(db.name)
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "webhooks.db"


# -- round trip ------------------------------------------------------------------------


def test_create_get_update_delete_round_trip(db: Path) -> None:
    with opened(db) as store:
        made = record(
            secret="s1",
            description="first",
            events=[TAG_SET, MV_CREATED, RM_CREATED],
            name="Round.Trip_1",
        )
        assert store.create_webhook(made) == made
        got = store.get_webhook(made.id)
        assert got == made
        assert got is not None
        assert got.secret == "s1"
        # Events come back in the caller's order.
        assert got.events == [TAG_SET, MV_CREATED, RM_CREATED]

        updated = store.update_webhook(
            made.id,
            lambda r: replace(
                r,
                name="renamed",
                url="https://example.org/other",
                description=None,
                secret="s2",
                status=pb.DISABLED,
                events=[RM_CREATED],
            ),
        )
        assert updated is not None
        assert updated.last_updated_timestamp > made.last_updated_timestamp
        assert updated.creation_timestamp == made.creation_timestamp
        again = store.get_webhook(made.id)
        assert again == updated
        assert again is not None
        assert (again.name, again.url, again.description, again.secret, again.status) == (
            "renamed",
            "https://example.org/other",
            None,
            "s2",
            pb.DISABLED,
        )
        assert again.events == [RM_CREATED]

        assert store.delete_webhook(made.id) is True
        assert store.get_webhook(made.id) is None
        assert store.delete_webhook(made.id) is False
        assert store.update_webhook(made.id, lambda r: r) is None
    # Its subscriptions went with it.
    assert raw(db, "SELECT COUNT(*) FROM webhook_events WHERE webhook_id = ?", made.id) == [(0,)]


def test_unknown_id(db: Path) -> None:
    with opened(db) as store:
        assert store.get_webhook("no-such-id") is None
        assert store.delete_webhook("no-such-id") is False
        assert store.update_webhook("no-such-id", lambda r: r) is None


def test_update_always_moves_last_updated_forward(db: Path) -> None:
    future = now_ms() + 60_000
    with opened(db) as store:
        made = store.create_webhook(record(ts=future))
        stamps = [made.last_updated_timestamp]
        for _ in range(3):
            updated = store.update_webhook(made.id, lambda r: r)
            assert updated is not None
            stamps.append(updated.last_updated_timestamp)
        # Strictly increasing even when the stored stamp is ahead of the clock.
        assert stamps == sorted(set(stamps))


def test_events_order_and_replacement(db: Path) -> None:
    with opened(db) as store:
        made = store.create_webhook(record(events=[RM_CREATED, MV_CREATED]))
        updated = store.update_webhook(made.id, lambda r: replace(r, events=[MV_CREATED, TAG_SET]))
        assert updated is not None
        assert store.get_webhook(made.id).events == [MV_CREATED, TAG_SET]  # type: ignore[union-attr]


def test_webhook_without_secret_stores_null(db: Path) -> None:
    with opened(db) as store:
        made = store.create_webhook(record(secret=None))
        assert store.get_webhook(made.id).secret is None  # type: ignore[union-attr]
        signed = store.create_webhook(record(secret="turn-me-off"))
        store.update_webhook(signed.id, lambda r: replace(r, secret=None))
        assert store.get_webhook(signed.id).secret is None  # type: ignore[union-attr]
    assert raw(db, "SELECT secret_token FROM webhooks WHERE id IN (?, ?)", made.id, signed.id) == [
        (None,),
        (None,),
    ]


# -- secrets at rest -------------------------------------------------------------------


def test_secret_stored_encrypted(db: Path) -> None:
    secret = f"plaintext-secret-{uuid.uuid4().hex}"
    with opened(db) as store:
        made = store.create_webhook(record(secret=secret))
        other = store.create_webhook(record(secret="x"))
        store.update_webhook(other.id, lambda r: replace(r, secret=secret + "-2"))
        # Mid-run, the WAL holds the newest pages.
        assert secret.encode() not in every_file_byte(db)
    assert secret.encode() not in every_file_byte(db)

    (token,) = raw(db, "SELECT secret_token FROM webhooks WHERE id = ?", made.id)[0]
    assert isinstance(token, str)
    assert secret not in token
    key = Path(f"{db}.key").read_bytes().strip()
    assert Fernet(key).decrypt(token.encode()).decode() == secret
    # The same secret twice gives two different tokens (Fernet's IV), so equal secrets do not
    # show.
    with opened(db) as store:
        third = store.create_webhook(record(secret=secret))
    tokens = raw(db, "SELECT secret_token FROM webhooks WHERE id IN (?, ?)", made.id, third.id)
    assert len({t for (t,) in tokens}) == 2


def test_key_file_made_0600_beside_db_and_reused(db: Path) -> None:
    key_file = Path(f"{db}.key")
    assert not key_file.exists()
    with opened(db) as store:
        made = store.create_webhook(record(secret="kept"))
    assert key_file.exists()
    assert key_file.parent == db.parent
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    Fernet(key.strip())  # a valid Fernet key

    with opened(db) as store:
        assert store.get_webhook(made.id).secret == "kept"  # type: ignore[union-attr]
    assert key_file.read_bytes() == key


def test_explicit_key_used_and_no_key_file(db: Path) -> None:
    key = Fernet.generate_key().decode()
    with opened(db, key) as store:
        made = store.create_webhook(record(secret="with-explicit-key"))
    assert not Path(f"{db}.key").exists()
    (token,) = raw(db, "SELECT secret_token FROM webhooks WHERE id = ?", made.id)[0]
    assert Fernet(key).decrypt(token.encode()) == b"with-explicit-key"
    with opened(db, key) as store:
        assert store.get_webhook(made.id).secret == "with-explicit-key"  # type: ignore[union-attr]


def test_wrong_key_is_a_clear_error_at_open(db: Path) -> None:
    with opened(db, Fernet.generate_key().decode()) as store:
        store.create_webhook(record(secret="locked"))
    store = Store(url_of(db), Fernet.generate_key().decode())
    try:
        with pytest.raises(SecretKeyError) as e:
            store.open()
    finally:
        store.close()
    assert "cannot decrypt" in str(e.value)
    assert "WEBHOOKS_SECRET_KEY" in str(e.value)


def test_missing_key_after_explicit_key_is_a_clear_error(db: Path) -> None:
    # Stored with an explicit key, then started without it: a fresh key file cannot open them.
    with opened(db, Fernet.generate_key().decode()) as store:
        store.create_webhook(record(secret="locked"))
    store = Store(url_of(db), None)
    try:
        with pytest.raises(SecretKeyError):
            store.open()
    finally:
        store.close()


def test_wrong_key_without_secrets_opens(db: Path) -> None:
    # Nothing to decrypt, nothing to refuse.
    with opened(db, Fernet.generate_key().decode()) as store:
        store.create_webhook(record(secret=None))
    with opened(db, Fernet.generate_key().decode()) as store:
        assert store.list_webhooks(10, None).items


@pytest.mark.parametrize("bad", ["short", "x" * 44, "not base64 at all!!"])
def test_malformed_key_is_a_clear_error(db: Path, bad: str) -> None:
    with pytest.raises(SecretKeyError) as e:
        Store(url_of(db), bad)
    assert "Fernet key" in str(e.value)
    assert bad not in str(e.value)


def run_server_expecting_exit(db: Path, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow_webhooks.server",
            "--grpc-address",
            "127.0.0.1:0",
            "--http-address",
            "127.0.0.1:0",
            "--database-url",
            url_of(db),
        ],
        cwd=ROOT,
        env={**os.environ, "WEBHOOKS_SECRET_KEY": key},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_server_with_wrong_key_exits_with_clear_message(db: Path) -> None:
    with opened(db, Fernet.generate_key().decode()) as store:
        store.create_webhook(record(secret="server-secret"))
    done = run_server_expecting_exit(db, Fernet.generate_key().decode())
    assert done.returncode != 0
    assert "listening" not in done.stdout
    assert "cannot decrypt" in done.stderr
    assert "WEBHOOKS_SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert "server-secret" not in done.stderr + done.stdout


def test_server_with_malformed_key_exits_with_clear_message(db: Path) -> None:
    done = run_server_expecting_exit(db, "not-a-fernet-key")
    assert done.returncode != 0
    assert "listening" not in done.stdout
    assert "WEBHOOKS_SECRET_KEY is not a Fernet key" in done.stderr
    assert "Traceback" not in done.stderr


# -- pagination ------------------------------------------------------------------------


def page_through(store: Store, limit: int) -> tuple[list[list[str]], list[str | None]]:
    pages: list[list[str]] = []
    tokens: list[str | None] = []
    token: str | None = None
    while True:
        page = store.list_webhooks(limit, token)
        pages.append([r.id for r in page.items])
        tokens.append(page.next_token)
        if page.next_token is None:
            return pages, tokens
        token = page.next_token
        assert len(pages) < 100, "pagination does not end"


def test_newest_first_ties_broken_by_id(db: Path) -> None:
    stamps = [1000, 1000, 1000, 999, 999, 1001, 998, 1000]
    with opened(db) as store:
        made = [store.create_webhook(record(ts=ts)) for ts in stamps]
        expected = [
            r.id for r in sorted(made, key=lambda r: (r.creation_timestamp, r.id), reverse=True)
        ]
        assert [r.id for r in store.list_webhooks(100, None).items] == expected
        for limit in (1, 2, 3, 4, 7, 8, 9):
            pages, tokens = page_through(store, limit)
            assert [i for p in pages for i in p] == expected, limit
            assert all(len(p) == limit for p in pages[:-1])
            assert tokens[-1] is None
            assert all(tokens[:-1])
        # An exact multiple of the limit ends without an empty extra page.
        pages, _ = page_through(store, 4)
        assert [len(p) for p in pages] == [4, 4]


def test_pages_survive_creates_and_deletes(db: Path) -> None:
    with opened(db) as store:
        made = [store.create_webhook(record(ts=1000 + i % 3)) for i in range(9)]
        first = store.list_webhooks(3, None)
        seen = [r.id for r in first.items]
        # Delete one already seen and one not yet seen; add a newer one.
        unseen = next(r.id for r in made if r.id not in seen)
        store.delete_webhook(seen[0])
        store.delete_webhook(unseen)
        store.create_webhook(record(ts=5000))
        token = first.next_token
        while token:
            page = store.list_webhooks(3, token)
            seen.extend(r.id for r in page.items)
            token = page.next_token
        assert len(seen) == len(set(seen))
        assert unseen not in seen
        assert set(seen) == {r.id for r in made} - {unseen}


def test_empty_store_lists_nothing(db: Path) -> None:
    with opened(db) as store:
        page = store.list_webhooks(100, None)
        assert page.items == []
        assert page.next_token is None


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_TOKENS = {
    "not-base64": "garbage!!",
    "non-ascii": "é",
    "truncated": "a",
    "not-json": b64("hello"),
    "object": b64('{"a": 1}'),
    "one-item": b64("[1]"),
    "three-items": b64("[1, 2, 3]"),
    "swapped": b64('["x", 1]'),
    "id-not-string": b64("[1, 2]"),
    "null": b64("null"),
    "number": b64("5"),
    "not-utf8": base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    "float-timestamp": b64('[1e3, "x"]'),
    "huge-timestamp": b64('[100000000000000000000000, "x"]'),
    "huge-negative-timestamp": b64('[-100000000000000000000000, "x"]'),
}


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_page_token_is_invalid_argument(db: Path, token: str) -> None:
    with opened(db) as store:
        store.create_webhook(record())
        with pytest.raises(InvalidArgument) as e:
            store.list_webhooks(10, token)
    assert e.value.code is Code.INVALID_ARGUMENT
    assert "page_token" in e.value.message
    assert "next_page_token" in e.value.message


# -- schema, pragmas -------------------------------------------------------------------


def test_schema_version_row(db: Path) -> None:
    with opened(db):
        pass
    table = m.SchemaVersion._meta.table_name  # type: ignore[attr-defined]
    assert raw(db, f"SELECT version FROM {table}") == [(SCHEMA_VERSION,)]  # noqa: S608
    with opened(db):
        pass
    # Opening again neither adds a row nor changes it.
    assert raw(db, f"SELECT version FROM {table}") == [(SCHEMA_VERSION,)]  # noqa: S608


def test_newer_schema_refused(db: Path) -> None:
    with opened(db):
        pass
    table = m.SchemaVersion._meta.table_name  # type: ignore[attr-defined]
    conn = sqlite3.connect(db)
    conn.execute(f"UPDATE {table} SET version = ?", (SCHEMA_VERSION + 1,))  # noqa: S608
    conn.commit()
    conn.close()
    store = Store(url_of(db), None)
    try:
        with pytest.raises(RuntimeError) as e:
            store.open()
    finally:
        store.close()
    assert "newer" in str(e.value)


def test_wal_mode(db: Path) -> None:
    with opened(db) as store:
        store.create_webhook(record())
        assert store.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    # WAL is a property of the file: a plain connection sees it too.
    assert raw(db, "PRAGMA journal_mode") == [("wal",)]


def test_tables_exist(db: Path) -> None:
    with opened(db):
        pass
    names = {n for (n,) in raw(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"webhooks", "webhook_events"} <= names


@pytest.mark.parametrize("content", [b"", b"not a key\n"])
def test_corrupt_key_file_is_a_clear_error_naming_it(db: Path, content: bytes) -> None:
    key_file = Path(f"{db}.key")
    key_file.write_bytes(content)
    with pytest.raises(SecretKeyError) as e:
        Store(url_of(db), None)
    # The operator set no WEBHOOKS_SECRET_KEY: the message must point at the file.
    assert str(key_file) in str(e.value)


async def test_reads_answer_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """Point reads of SQLite run on the server's event loop: WAL readers never wait for a
    writer, so a write lock held elsewhere does not stop them."""
    import grpc

    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
    from tests.support import own_server

    server = own_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            stub = pb_grpc.WebhookServiceStub(channel)
            event = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
            request = pb.CreateWebhook(name="read", url="http://127.0.0.1:9/h", events=[event])
            hook = (await stub.createWebhook(request)).webhook
            writer = sqlite3.connect(tmp_path / "webhooks.db", isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE webhooks SET name = 'changed'")
            try:
                got = await stub.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id), timeout=30)
                assert got.webhook == hook  # the last committed state
                listed = await stub.listWebhooks(pb.ListWebhooks(), timeout=30)
                assert list(listed.webhooks) == [hook]
            finally:
                writer.execute("ROLLBACK")
                writer.close()
    finally:
        assert server.stop() == 0


def an_event() -> EventRecord:
    return EventRecord(
        id=str(uuid.uuid4()),
        event=MV_CREATED,
        data="{}",
        occurred_at="2026-01-01T00:00:00+00:00",
        creation_timestamp=now_ms(),
        payload="{}",
    )


def test_a_full_disk_is_reported_as_such(db: Path) -> None:
    """SQLite rolls back by itself when the disk is full; the error says the disk is full,
    not that peewee's own rollback then found no transaction. SQLite's max_page_count stands
    in for the disk: it fails writes with SQLITE_FULL exactly as a full disk does."""
    from mlflow_webhooks.server.store import DiskFull

    def big_event() -> EventRecord:
        return replace(an_event(), payload="x" * 100_000)

    with opened(db) as store:
        store.create_webhook(record())
        pages = store.db.execute_sql("PRAGMA page_count").fetchone()[0]
        store.db.execute_sql(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(DiskFull) as e:
            for _ in range(10):
                store.publish(big_event())
        assert "disk" in str(e.value) and "full" in str(e.value)
        assert "no transaction is active" not in str(e.value)
        # Once there is room again, writes go on.
        store.db.execute_sql("PRAGMA max_page_count = 1073741823")
        store.publish(big_event())


# -- batched writes on the event loop (Store.run_at_once) ---------------------------------


def deliveries(db: Path) -> int:
    [(count,)] = raw(db, "SELECT COUNT(*) FROM deliveries")
    return int(count)  # type: ignore[call-overload]


def test_a_batch_write_runs_at_once_when_the_lock_is_free(db: Path) -> None:
    with opened(db) as store:
        store.create_webhook(record())
        [(_, ids)] = store.run_at_once(store.publish_many, [an_event()])
        assert len(ids) == 1 and deliveries(db) == 1
        # Its connection leaves checkpoints to Store.checkpoint, on the write thread.
        assert store.db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == 0


def test_a_batch_write_is_refused_unwritten_while_another_process_holds_the_lock(
    db: Path,
) -> None:
    """Refused at once, not after the busy timeout (a minute here: waiting for it would end
    in a timeout error, not WriteLockBusy), and its connection waits again afterwards."""
    store = Store(url_of(db), None, timeout=60)
    try:
        store.open()
        store.create_webhook(record())
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(WriteLockBusy):
                store.run_at_once(store.publish_many, [an_event()])
        finally:
            holder.rollback()
            holder.close()
        assert deliveries(db) == 0
        assert store.db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 60_000
        store.run(None, store.publish_many, [an_event()])
        assert deliveries(db) == 1
    finally:
        store.close()


def test_a_batch_write_is_refused_while_this_process_writes(db: Path) -> None:
    """The write thread holds the lock mid-transaction: the event loop's write goes to it
    instead of waiting on the loop."""
    with opened(db) as store:
        store.create_webhook(record())
        inside, release = threading.Event(), threading.Event()

        def write_slowly() -> None:
            with store._write():
                inside.set()
                assert release.wait(10)

        writer = threading.Thread(target=write_slowly)
        writer.start()
        try:
            assert inside.wait(10)
            with pytest.raises(WriteLockBusy):
                store.run_at_once(store.publish_many, [an_event()])
        finally:
            release.set()
            writer.join(10)
        assert deliveries(db) == 0
        store.run_at_once(store.publish_many, [an_event()])
        assert deliveries(db) == 1


def test_batch_writes_leave_checkpoints_to_the_write_thread(db: Path) -> None:
    """Past SQLite's automatic threshold (1,000 pages of log), a batch write on the event
    loop still copies nothing into the database file: that syncs the file, which the loop
    must not wait for; Store.checkpoint, on the write thread, does it."""
    with opened(db) as store:
        store.create_webhook(record())
        store.checkpoint()
        before = db.stat().st_size
        for _ in range(100):  # ~5 MB, over 1,000 pages of 4 KiB
            store.run_at_once(store.publish_many, [replace(an_event(), payload="x" * 50_000)])
        assert db.stat().st_size == before
        store.checkpoint()
        assert db.stat().st_size > before + 4_000_000


async def test_the_servers_log_stays_bounded_under_batch_writes(tmp_path: Path) -> None:
    """Publishes commit on the event loop without SQLite's automatic checkpoints; the server
    checkpoints on its write thread whenever the write-ahead log reaches 4 MiB, so the log
    does not grow with what is published (here about 16 MB: 400 events stored with their
    40 KB bodies)."""
    import aiohttp

    from tests.support import EVENT_JSON, own_server

    server = own_server(tmp_path)
    try:
        url = f"{server.http_url}/api/2.0/mlflow/webhook-events"
        body = {**EVENT_JSON, "data": {**EVENT_JSON["data"], "description": "x" * 20_000}}
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                async with http.post(url, json=body) as response:
                    assert response.status == 200, await response.text()
        log = tmp_path / "webhooks.db-wal"
        assert log.stat().st_size < 8_000_000
    finally:
        assert server.stop() == 0
