"""Page tokens and keyset pages: list calls hand out an opaque cursor of the last row's
(creation_timestamp, id) and accept it back unchanged."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import peewee as pw

from mlflow_webhooks.server.errors import InvalidArgument
from mlflow_webhooks.server.store import models as m


def encode_cursor(timestamp: int, item_id: str) -> str:
    raw = json.dumps([timestamp, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, str]:
    try:
        timestamp, item_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(timestamp, int) and 0 <= timestamp < 2**63 and isinstance(item_id, str):
            return timestamp, item_id
    except (ValueError, TypeError, binascii.Error, RecursionError):
        pass
    raise InvalidArgument(
        f"Invalid page_token {token!r}: pass the next_page_token of the previous response "
        "unchanged."
    )


def keyset_page(
    query: pw.ModelSelect, model: type[m.BaseModel], limit: int, page_token: str | None
) -> tuple[list[Any], str | None]:
    """Newest first by (creation_timestamp, id): a page starts strictly after the last row of
    the previous one, so rows created or deleted meanwhile neither shift nor repeat it."""
    created, key = model.creation_timestamp, model.id  # type: ignore[attr-defined]
    if page_token:
        ts, last_id = decode_cursor(page_token)
        # A row-value comparison: SQLite and PostgreSQL answer it with a range search of the
        # (creation_timestamp, id) index, where the equivalent OR of two conditions made SQLite
        # scan the index from the newest row, so that page N cost O(N).
        query = query.where(pw.Tuple(created, key) < pw.Tuple(ts, last_id))
    rows = list(query.order_by(created.desc(), key.desc()).limit(limit + 1))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.creation_timestamp, last.id)
