"""Operator commands on the database, beside the server.

`webhooks-server backup PATH`: a consistent copy of a live SQLite database, taken with
SQLite's online backup API (what is committed, WAL included, while the server keeps
serving), and its key file beside it, both readable by their owner only.

`webhooks-server copy-database TARGET_URL`: every row of a stopped server's database into a
new one (SQLite to PostgreSQL), schema made by the Store as a server would make it."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import peewee as pw

from mlflow_webhooks.server.config import Config
from mlflow_webhooks.server.store import Store, open_database, sqlite_path
from mlflow_webhooks.server.store import models as m
from mlflow_webhooks.server.store.secrets import key_file_for

# Parents before children, so foreign keys hold at every insert.
COPIED: list[type[m.BaseModel]] = [
    m.Webhook,
    m.Subscription,
    m.Event,
    m.Delivery,
    m.Attempt,
    m.WebhookDisable,
]
ROWS_PER_INSERT = 500


class BackupError(RuntimeError):
    """The backup cannot be made; the message says why and what to do."""


def _private_file(path: Path) -> None:
    """Creates `path` empty, mode 0600; refuses to overwrite anything."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(f"{path} exists; give a new file name") from None
    except FileNotFoundError:
        raise BackupError(f"{path.parent} does not exist; create it first") from None
    except OSError as e:
        raise BackupError(f"cannot create {path}: {e.strerror}") from None


def backup(database_url: str, target: Path) -> list[Path]:
    """Copies the database (and its key file, if it has one) to `target` (and
    `target`.key); answers the files written."""
    source = sqlite_path(database_url)
    if source is None or source == ":memory:":
        raise BackupError(
            "backup copies an SQLite database file; back up PostgreSQL with pg_dump, and keep "
            "WEBHOOKS_SECRET_KEY with it (docs/operations.md)"
        )
    if not Path(source).is_file():
        raise BackupError(f"no database at {source} (--database-url {database_url})")
    key = key_file_for(source)
    _private_file(target)
    written = [target]
    try:
        with (
            closing(sqlite3.connect(source)) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        if key.exists():
            target_key = key_file_for(str(target))
            _private_file(target_key)
            written.append(target_key)
            shutil.copyfile(key, target_key)
    except (OSError, sqlite3.Error) as e:
        for path in written:
            path.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source} to {target}: {e}") from None
    return written


def copy_database(source_url: str, target_url: str, secret_key: str) -> dict[str, int]:
    """Copies every row into the empty database at `target_url`, whose schema is made first
    (the current version); `secret_key` must be the source's key, so the copied secrets open.
    Answers the rows copied by table."""
    target_store = Store(target_url, secret_key)
    target_store.open()
    target_store.close()
    source, target = open_database(source_url, 1), open_database(target_url, 1)
    copied: dict[str, int] = {}
    try:
        for model in COPIED:
            table = model._meta.table_name
            fields = model._meta.sorted_fields
            with model.bind_ctx(target):
                if model.select().exists():
                    raise BackupError(
                        f"the target's {table} table is not empty: copy into a new one"
                    )
            with model.bind_ctx(source):
                sql, params = model.select(*fields).tuples().sql()
            rows = source.execute_sql(sql, params)
            copied[table] = 0
            with target.atomic(), model.bind_ctx(target):
                while batch := rows.fetchmany(ROWS_PER_INSERT):
                    # python_value: SQLite's 0/1 become the booleans PostgreSQL wants.
                    converted = [
                        tuple(f.python_value(v) for f, v in zip(fields, row, strict=True))
                        for row in batch
                    ]
                    model.insert_many(converted, fields=fields).execute()
                    copied[table] += len(batch)
    except pw.DatabaseError as e:
        raise BackupError(f"copy failed: {e}") from None
    finally:
        source.close()
        target.close()
    return copied


def copy_main(argv: Sequence[str]) -> int:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="webhooks-server copy-database",
        description="Copy every row of a stopped server's database into a new, empty one "
        "(e.g. SQLite to PostgreSQL). The target gets the current schema; set "
        "WEBHOOKS_SECRET_KEY to the source's key (an SQLite key file's content).",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("WEBHOOKS_DATABASE_URL", defaults.database_url),
        help=f"the source [WEBHOOKS_DATABASE_URL; default: {defaults.database_url}]",
    )
    parser.add_argument("target_url", help="the new database, e.g. postgresql://user@host/db")
    args = parser.parse_args(argv)
    source = sqlite_path(args.database_url)
    key = os.environ.get("WEBHOOKS_SECRET_KEY") or None
    if key is None and source is not None and key_file_for(source).exists():
        key = key_file_for(source).read_text().strip()
    if key is None:
        print(
            "webhooks-server copy-database: set WEBHOOKS_SECRET_KEY to the source's key",
            file=sys.stderr,
        )
        return 1
    try:
        copied = copy_database(args.database_url, args.target_url, key)
    except (BackupError, RuntimeError, OSError) as e:
        print(f"webhooks-server copy-database: {e}", file=sys.stderr)
        return 1
    print(", ".join(f"{table}: {n} rows" for table, n in copied.items()))
    return 0


def main(argv: Sequence[str]) -> int:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="webhooks-server backup",
        description="Copy a live SQLite database, and its key file, to PATH and PATH.key.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("WEBHOOKS_DATABASE_URL", defaults.database_url),
        help=f"the server's database [WEBHOOKS_DATABASE_URL; default: {defaults.database_url}]",
    )
    parser.add_argument("path", type=Path, help="the new backup file (must not exist)")
    args = parser.parse_args(argv)
    try:
        written = backup(args.database_url, args.path)
    except BackupError as e:
        print(f"webhooks-server backup: {e}", file=sys.stderr)
        return 1
    print("backed up to " + " and ".join(str(p) for p in written))
    return 0
