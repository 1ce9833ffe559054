"""The databases a suite runs against: SQLite, and the real PostgreSQL that CI runs on
127.0.0.1:5432 (user postgres, database test, trust auth), each test on a fresh schema."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

POSTGRES = os.environ.get("WEBHOOKS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
KINDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class Database:
    kind: str
    url: str
    # PostgreSQL needs the key given: only SQLite makes a key file of its own.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def secret_key(self) -> str | None:
        return self.env.get("WEBHOOKS_SECRET_KEY")


@functools.cache
def postgres_problem() -> str | None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES, connect_timeout=5):
            return None
    except psycopg.Error as e:
        return f"PostgreSQL at {POSTGRES} is unreachable: {e}"


def require_postgres() -> None:
    """In CI a missing PostgreSQL fails the run; elsewhere its tests skip, saying why."""
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem + " (CI=true: PostgreSQL tests must run)")
    pytest.skip(problem)


@contextmanager
def fresh(kind: str, workdir: Path) -> Iterator[Database]:
    if kind == "sqlite":
        yield Database(kind, f"sqlite:///{workdir}/webhooks.db")
        return
    require_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        yield Database(kind, url, {"WEBHOOKS_SECRET_KEY": Fernet.generate_key().decode()})
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


# Children before parents; schema_version stays.
TABLES = [
    "delivery_attempts",
    "deliveries",
    "events",
    "webhook_disables",
    "webhook_events",
    "webhooks",
]


def empty_tables(database: Database) -> None:
    if database.kind == "sqlite":
        import sqlite3

        path = database.url.removeprefix("sqlite:///")
        with sqlite3.connect(path, timeout=30) as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        return
    import psycopg

    schema = database.url.rsplit("%3D", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        # The server's background rounds (claims, the secret sweep, ordered turns) lock rows
        # in their own table order, so TRUNCATE, which locks every table, can meet one in a
        # deadlock; PostgreSQL then aborts one side, and when that is the TRUNCATE it goes
        # again (the server retries its own).
        for attempt in range(1, 6):
            try:
                conn.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for t in TABLES)}")
                return
            except psycopg.errors.DeadlockDetected:
                if attempt == 5:
                    raise
