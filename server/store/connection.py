"""Opening the database: SQLite in WAL mode or pooled PostgreSQL, each bounded by
--db-timeout, and the errors that say the database cannot answer now."""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import urlsplit

import peewee as pw
from playhouse.db_url import connect, parse
from playhouse.pool import PooledPostgresqlDatabase

DEFAULT_TIMEOUT = 10.0  # seconds; --db-timeout


class DatabaseTimeout(pw.OperationalError):
    """A call waited its whole --db-timeout for a connection or for the write lock."""


class DiskFull(pw.OperationalError):
    """SQLite could not grow the database file (SQLITE_FULL): writes fail until there is
    room again; reads go on."""


def unmasked(error: pw.OperationalError) -> pw.OperationalError:
    """SQLite rolls a transaction back by itself on some errors (a full disk), and peewee's
    own rollback then fails with "cannot rollback - no transaction is active", which hides
    the cause: the cause, and a full disk said plainly."""
    cause: BaseException = error
    # peewee's error, then sqlite3's about the rollback, then the one that made it roll back.
    while "no transaction is active" in str(cause) and cause.__context__ is not None:
        cause = cause.__context__
    original = _sqlite_error(cause)
    if getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFull(
            f"the disk holding the SQLite database is full ({original}): free space on it; "
            "writes fail until then"
        )
    return cause if isinstance(cause, pw.OperationalError) else error


def is_busy(error: pw.OperationalError) -> bool:
    """SQLite answered SQLITE_BUSY: another connection holds the lock it asked for."""
    return getattr(_sqlite_error(error), "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def _sqlite_error(error: BaseException) -> BaseException | None:
    """sqlite3's error behind `error`, which carries the error code: peewee raises its own
    error while sqlite3's is being handled."""
    return error.__context__ if isinstance(error, pw.OperationalError) else error


class WriteLockBusy(Exception):
    """A write that may not wait found SQLite's write lock taken (Store.run_at_once). Not a
    DatabaseUnavailable: the database is fine, the write just goes to the write thread."""


# What the database raises when it cannot answer now (down, locked past the timeout): worth
# retrying, unlike a bug.
DatabaseUnavailable = (pw.OperationalError, pw.InterfaceError)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    # When the write-ahead log starts over after a checkpoint, its file is cut back to 1 MiB:
    # a burst does not leave a large file behind, and the file's size then says how much the
    # log holds (the core checkpoints by it: Store.log_bytes).
    "journal_size_limit": 1024 * 1024,
    "foreign_keys": 1,
}


def sqlite_path(database_url: str) -> str | None:
    """The file path of an SQLite URL (":memory:" for memory), or None for other databases."""
    parts = urlsplit(database_url)
    if not parts.scheme.startswith("sqlite"):
        return None
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    return (path[1:] if path.startswith("/") else path) or ":memory:"


class BoundedPostgres(PooledPostgresqlDatabase):
    """Pooled PostgreSQL connections that wait at most `timeout` seconds for a lock or for a
    statement, so a locked table answers an error instead of holding the caller."""

    def __init__(self, database: str, timeout: float, **kwargs: Any) -> None:
        self._timeout_ms = max(1, int(timeout * 1000))
        # libpq's connect_timeout is whole seconds, at least 2.
        kwargs.setdefault("connect_timeout", max(2, -(-self._timeout_ms // 1000)))
        super().__init__(database, **kwargs)

    def _initialize_connection(self, conn: Any) -> None:
        # Set per session rather than as a startup option: a URL's own `options` stay as
        # given, and PgBouncer (which refuses unknown startup options) passes a SET through.
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('statement_timeout', %s, false)",
                (f"{self._timeout_ms}ms", f"{self._timeout_ms}ms"),
            )


def open_database(
    database_url: str, connections: int, timeout: float = DEFAULT_TIMEOUT
) -> pw.Database:
    """SQLite in WAL mode, or PostgreSQL through a connection pool, each waiting at most
    `timeout` seconds on a lock; any other playhouse.db_url URL as given."""
    path = sqlite_path(database_url)
    if path is not None:
        if path != ":memory:":
            # Made here, owner-only: SQLite gives the -wal and -shm files the mode of the
            # database file, and left to itself would make all three 0644.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        pragmas = {**SQLITE_PRAGMAS, "busy_timeout": max(1, int(timeout * 1000))}
        return connect(database_url, pragmas=pragmas)
    scheme, rest = database_url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        return BoundedPostgres(
            timeout=timeout,
            max_connections=connections,
            stale_timeout=300,
            **parse(f"postgresql://{rest}"),
        )
    return connect(database_url)
