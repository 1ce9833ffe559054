"""The delivery worker's claim against one webhook's backlog: `python -m bench.claim`.

One webhook has BACKLOG deliveries due, the oldest of all, and all of its slots busy in the
claiming process; OTHERS webhooks have a few due rows each. A claim must find those few
without walking the backlog. Prints the median claim time on SQLite, and on PostgreSQL when
one answers at WEBHOOKS_BENCH_POSTGRES_URL (default: the tests' 127.0.0.1:5432/test), on a
schema of its own that it drops afterwards."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

BACKLOG = 100_000
OTHERS = 10
PER_OTHER = 10
CLAIMS = 50
LIMIT = 56  # the free slots of a worker whose busy webhook holds 8 of 64
POSTGRES = os.environ.get(
    "WEBHOOKS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def fill(store: object, now: int, backlog: int) -> str:
    """The backlog and the other webhooks' rows; the backlogged webhook's id."""
    import peewee as pw

    from mlflow_webhooks.server.store import models as m

    busy = str(uuid.uuid4())
    others = [str(uuid.uuid4()) for _ in range(OTHERS)]
    event = str(uuid.uuid4())
    with m.database.atomic():
        m.Event.create(
            id=event, entity=2, action=1, data="{}", occurred_at="x", creation_timestamp=now
        )
        rows = [(busy, now - backlog * 10 + i) for i in range(backlog)]
        rows += [(hook, now - i) for hook in others for i in range(PER_OTHER)]
        for chunk in pw.chunked(rows, 1000):
            m.Delivery.insert_many(
                [
                    {
                        "id": str(uuid.uuid4()),
                        "event": event,
                        "webhook_id": hook,
                        "status": 1,
                        "next_attempt_timestamp": due,
                        "creation_timestamp": due,
                    }
                    for hook, due in chunk
                ]
            ).execute()
    if not getattr(store, "is_sqlite", True):
        m.database.execute_sql("ANALYZE deliveries")
    return busy


def measure(url: str, secret_key: str | None, backlog: int) -> float:
    """Median milliseconds of one claim (each claim's rows are handed back before the next)."""
    from mlflow_webhooks.server.store import Store, now_ms

    store = Store(url, secret_key)
    store.open()
    now = now_ms()
    busy = fill(store, now, backlog)
    times = []
    for _ in range(CLAIMS):
        started = time.perf_counter()
        claimed = store.claim(
            "bench", now, 60_000, LIMIT, lambda hook, most: 0 if hook == busy else most
        )
        times.append(time.perf_counter() - started)
        assert len(claimed) == LIMIT, len(claimed)
        store.release("bench", [c.delivery_id for c in claimed])
    store.close()
    return statistics.median(times) * 1000


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        for backlog in (BACKLOG, 0):
            url = f"sqlite:///{Path(directory) / f'claim-{backlog}.db'}"
            ms = measure(url, None, backlog)
            print(f"SQLite: claim, {backlog:,} rows due for one busy webhook: {ms:.2f} ms")
    try:
        import psycopg
        from cryptography.fernet import Fernet

        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5):
            pass
    except Exception as e:  # no PostgreSQL here: SQLite alone
        print(f"PostgreSQL: skipped ({e})", file=sys.stderr)
        return 0
    for backlog in (BACKLOG, 0):
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            ms = measure(url, Fernet.generate_key().decode(), backlog)
            print(f"PostgreSQL: claim, {backlog:,} rows due for one busy webhook: {ms:.2f} ms")
        finally:
            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
