"""Delivery settings policy, in-process: validation against the operator's limits and its
messages, what a part left out means, and the stored form."""

from __future__ import annotations

import math
import re

import pytest

from mlflow_webhooks.server.delivery import settings
from mlflow_webhooks.server.delivery.settings import DeliverySettings, Limits, validated
from mlflow_webhooks.server.errors import InvalidArgument

LIMITS = Limits(
    max_retries=3, max_retry_window=100, max_delivery_timeout=30, max_webhook_concurrency=16
)


def test_nothing_given_is_no_settings() -> None:
    assert validated([], None, None, LIMITS) == settings.NO_SETTINGS
    assert settings.NO_SETTINGS.empty and settings.NO_SETTINGS.to_json() is None
    assert settings.parse(None) == settings.NO_SETTINGS


def test_parts_left_out_are_the_servers() -> None:
    server_schedule = (5.0, 300.0)
    assert settings.NO_SETTINGS.schedule(server_schedule) == server_schedule
    assert settings.NO_SETTINGS.timeout is None  # the sender's --delivery-timeout
    assert settings.NO_SETTINGS.concurrency() == settings.DEFAULT_MAX_CONCURRENCY
    own = validated([1, 2.5], 4, 2, LIMITS)
    assert own.schedule(server_schedule) == (1.0, 2.5)
    assert (own.timeout, own.concurrency()) == (4, 2)


@pytest.mark.parametrize(
    "given",
    [
        DeliverySettings((1.0, 2.5, 0.0), 30.0, 16),  # each at its limit
        DeliverySettings(None, 0.5, None),
        DeliverySettings((60.0,), None, 1),
    ],
)
def test_stored_form_round_trips(given: DeliverySettings) -> None:
    again = validated(given.retry_schedule or (), given.timeout, given.max_concurrency, LIMITS)
    assert again == given
    assert settings.parse(given.to_json()) == given


@pytest.mark.parametrize(
    ("schedule", "timeout", "concurrency", "message"),
    [
        (
            [1, 1, 1, 1],
            None,
            None,
            "has 4 delays; this server allows at most 3 retries (--max-retries)",
        ),
        (
            [60, 41],
            None,
            None,
            "adds up to 101 seconds; this server allows at most 100 (--max-retry-window)",
        ),
        (
            [1, -1],
            None,
            None,
            "settings.retry_schedule[1] is -1; each delay is a number of seconds",
        ),
        ([math.nan], None, None, "settings.retry_schedule[0] is nan"),
        ([math.inf], None, None, "settings.retry_schedule[0] is inf"),
        ([], 0, None, "settings.timeout_seconds is 0; it must be a positive number of seconds"),
        ([], -2, None, "settings.timeout_seconds is -2"),
        ([], math.inf, None, "settings.timeout_seconds is inf"),
        ([], 30.5, None, "is 30.5; this server allows at most 30 (--max-delivery-timeout)"),
        (
            [],
            None,
            0,
            "settings.max_concurrency is 0; it must be 1 to 16 (--max-webhook-concurrency)",
        ),
        ([], None, 17, "settings.max_concurrency is 17; it must be 1 to 16"),
    ],
)
def test_invalid_settings_say_what_to_fix(
    schedule: list[float], timeout: float | None, concurrency: int | None, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        validated(schedule, timeout, concurrency, LIMITS)


def test_settings_stored_under_older_limits_stay_valid() -> None:
    """An operator lowering a limit does not void stored settings: they were validated when
    set, and a delivery reads them as they are."""
    stored = validated([50, 50], 30, 16, LIMITS).to_json()
    assert settings.parse(stored) == DeliverySettings((50.0, 50.0), 30, 16)
