"""Delivery settings policy, in-process: validation against the operator's limits and its
messages, what a change keeps and what it puts back to the server's, and the stored form."""

from __future__ import annotations

import math
import re

import pytest

from mlflow_webhooks.server.delivery import settings
from mlflow_webhooks.server.delivery.settings import Change, DeliverySettings, Limits, change
from mlflow_webhooks.server.errors import InvalidArgument

LIMITS = Limits(
    max_retries=3, max_retry_window=100, max_delivery_timeout=30, max_webhook_concurrency=16
)
OWN = DeliverySettings((1.0, 2.5), 4.0, 2)


def test_nothing_given_changes_nothing() -> None:
    assert change(None, None, None, LIMITS) == Change()
    assert Change().applied(settings.NO_SETTINGS) == settings.NO_SETTINGS
    assert Change().applied(OWN) == OWN
    assert settings.NO_SETTINGS.empty and settings.NO_SETTINGS.to_json() is None
    assert settings.parse(None) == settings.NO_SETTINGS


def test_a_change_keeps_the_parts_it_does_not_give() -> None:
    assert change(None, 9, None, LIMITS).applied(OWN) == DeliverySettings((1.0, 2.5), 9, 2)
    assert change([7], None, None, LIMITS).applied(OWN) == DeliverySettings((7.0,), 4.0, 2)
    assert change(None, None, 16, LIMITS).applied(OWN) == DeliverySettings((1.0, 2.5), 4.0, 16)


def test_empty_or_zero_puts_a_part_back_to_the_servers() -> None:
    assert change([], None, None, LIMITS).applied(OWN) == DeliverySettings(None, 4.0, 2)
    assert change(None, 0, None, LIMITS).applied(OWN) == DeliverySettings((1.0, 2.5), None, 2)
    assert change(None, None, 0, LIMITS).applied(OWN) == DeliverySettings((1.0, 2.5), 4.0)
    assert change([], 0, 0, LIMITS).applied(OWN) == settings.NO_SETTINGS


def test_parts_not_set_are_the_servers() -> None:
    server_schedule = (5.0, 300.0)
    assert settings.NO_SETTINGS.schedule(server_schedule) == server_schedule
    assert settings.NO_SETTINGS.timeout is None  # the sender's --delivery-timeout
    assert settings.NO_SETTINGS.concurrency(7) == 7  # the server's, as the dispatcher has it
    assert OWN.schedule(server_schedule) == (1.0, 2.5)
    assert (OWN.timeout, OWN.concurrency(7)) == (4.0, 2)


@pytest.mark.parametrize(
    ("flag", "default"),
    [(1, 1), (16, 16), (settings.DEFAULT_MAX_CONCURRENCY, 32), (100, 32)],
)
def test_the_servers_maximum_is_capped_by_the_flag(flag: int, default: int) -> None:
    """--max-webhook-concurrency below the server's default lowers it for webhooks without
    their own maximum too; above it, the default stays. The error names the one in use."""
    limits = Limits(3, 100, 30, max_webhook_concurrency=flag)
    assert limits.default_concurrency == default
    assert settings.NO_SETTINGS.concurrency(limits.default_concurrency) == default
    message = (
        f"it must be 1 to {flag} (--max-webhook-concurrency), or 0 for the server's, {default}."
    )
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        change(None, None, flag + 1, limits)


@pytest.mark.parametrize(
    "given",
    [
        DeliverySettings((1.0, 2.5, 0.0), 30.0, 16),  # each at its limit
        DeliverySettings(None, 0.5, None),
        DeliverySettings((60.0,), None, 1),
    ],
)
def test_stored_form_round_trips(given: DeliverySettings) -> None:
    made = change(given.retry_schedule, given.timeout, given.max_concurrency, LIMITS)
    assert made.applied(settings.NO_SETTINGS) == given
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
            "settings.retry_schedule.delays_seconds[1] is -1; each delay is a number of seconds",
        ),
        ([math.nan], None, None, "settings.retry_schedule.delays_seconds[0] is nan"),
        ([math.inf], None, None, "settings.retry_schedule.delays_seconds[0] is inf"),
        (None, -2, None, "settings.timeout_seconds is -2; it must be a positive number"),
        (None, math.inf, None, "settings.timeout_seconds is inf"),
        (None, math.nan, None, "settings.timeout_seconds is nan"),
        (None, 30.5, None, "is 30.5; this server allows at most 30 (--max-delivery-timeout)"),
        (
            None,
            None,
            -1,
            "settings.max_concurrency is -1; it must be 1 to 16 (--max-webhook-concurrency), "
            "or 0 for the server's, 16.",
        ),
        (None, None, 17, "settings.max_concurrency is 17; it must be 1 to 16"),
    ],
)
def test_invalid_settings_say_what_to_fix(
    schedule: list[float] | None, timeout: float | None, concurrency: int | None, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        change(schedule, timeout, concurrency, LIMITS)


def test_settings_stored_under_older_limits_stay_valid() -> None:
    """An operator lowering a limit does not void stored settings: they were validated when
    set, and a delivery reads them as they are."""
    stored = change([50, 50], 30, 16, LIMITS).applied(settings.NO_SETTINGS).to_json()
    assert settings.parse(stored) == DeliverySettings((50.0, 50.0), 30, 16)
