"""Page tokens (cursors), in-process: what list calls hand out, and what they accept back.
tests/test_store.py covers paging through a real database."""

from __future__ import annotations

import base64

import pytest

from mlflow_webhooks.server.errors import InvalidArgument
from mlflow_webhooks.server.store import decode_cursor, encode_cursor


@pytest.mark.parametrize(
    ("timestamp", "item_id"),
    [(0, ""), (1_767_225_600_000, "0b9e8e56-7a43-4f5c-9d0b-2f8c1f6d2a11"), (2**63 - 1, "é")],
)
def test_cursor_round_trip(timestamp: int, item_id: str) -> None:
    token = encode_cursor(timestamp, item_id)
    assert decode_cursor(token) == (timestamp, item_id)
    # Opaque and URL-safe: it travels in query strings as it is.
    assert "=" not in token and "+" not in token and "/" not in token


def token_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "not-base64-at-all",
        token_of(b"not json"),
        token_of(b"[1]"),
        token_of(b'[1, "a", 3]'),
        token_of(b'{"a": 1}'),
        token_of(b'["1", "a"]'),
        token_of(b'[1.5, "a"]'),
        token_of(b'[-1, "a"]'),
        token_of(b'[9223372036854775808, "a"]'),
        token_of(b"[1, 2]"),
        token_of(b"[1, null]"),
        token_of(b'\xff\xfe[1, "a"]'),
    ],
)
def test_bad_cursor_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        decode_cursor(token)
    assert "Invalid page_token" in refused.value.message
    assert "next_page_token" in refused.value.message


def test_time_ordered_ids_are_version_7_uuids_in_time_order() -> None:
    """Event and delivery ids: RFC 9562 version 7, so ids made one after another sit side by
    side in the tables' indexes; unique within a millisecond by their 74 random bits."""
    import uuid

    from mlflow_webhooks.server.store import time_ordered_id

    made = [time_ordered_id(1_767_225_600_000 + ms) for ms in (0, 0, 1, 2, 1000)]
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
    assert int(made[0][:8] + made[0][9:13], 16) == 1_767_225_600_000
    assert made[2:] == sorted(made[2:]) and max(made[:2]) < made[2]
    assert len(set(time_ordered_id(5) for _ in range(1000))) == 1000
