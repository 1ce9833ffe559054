"""Per-webhook delivery settings: a retry schedule, a timeout and a maximum concurrency that
override the server's, each within a limit the operator sets by flag; and whether the webhook
is ordered (server/ordering.py).

A part not set means the server's own (--retry-schedule, --delivery-timeout, the
dispatcher's per-webhook limit): a webhook without settings is delivered to exactly as one
before settings existed. A set call changes the parts it gives and keeps the others. Pure:
validated at set time, stored as JSON text on the webhook's row, parsed once per distinct
text (`parse` is cached) wherever a claim reads it."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlflow_webhooks.server.errors import InvalidArgument

# The dispatcher's per-webhook limit, per process, for a webhook without its own, unless
# --max-webhook-concurrency is lower (Limits.default_concurrency).
DEFAULT_MAX_CONCURRENCY = 32


@dataclass(frozen=True)
class Limits:
    """The bounds the operator allows webhooks' settings (server flags; defaults in Config)."""

    max_retries: int  # --max-retries: most delays in a schedule
    max_retry_window: float  # --max-retry-window: their longest total, seconds
    max_delivery_timeout: float  # --max-delivery-timeout
    max_webhook_concurrency: int  # --max-webhook-concurrency

    @property
    def default_concurrency(self) -> int:
        """The maximum in flight of a webhook whose settings give none: an operator who
        lowers --max-webhook-concurrency below the default lowers it for every webhook."""
        return min(DEFAULT_MAX_CONCURRENCY, self.max_webhook_concurrency)


@dataclass(frozen=True)
class DeliverySettings:
    retry_schedule: tuple[float, ...] | None = None  # seconds before each retry
    timeout: float | None = None  # seconds per attempt, connect to last byte
    max_concurrency: int | None = None  # attempts in flight at once, per server process
    ordered: bool = False  # one delivery at a time, in publish order

    @property
    def empty(self) -> bool:
        return self == NO_SETTINGS

    def schedule(self, default: tuple[float, ...]) -> tuple[float, ...]:
        return default if self.retry_schedule is None else self.retry_schedule

    def concurrency(self, default: int) -> int:
        """Its maximum in flight; `default` is the server's (Limits.default_concurrency)."""
        return default if self.max_concurrency is None else self.max_concurrency

    def to_json(self) -> str | None:
        """The stored form; None (no settings) when empty."""
        if self.empty:
            return None
        stored: dict[str, object] = {}
        if self.retry_schedule is not None:
            stored["retry_schedule"] = list(self.retry_schedule)
        if self.timeout is not None:
            stored["timeout"] = self.timeout
        if self.max_concurrency is not None:
            stored["max_concurrency"] = self.max_concurrency
        if self.ordered:
            stored["ordered"] = True
        return json.dumps(stored, separators=(",", ":"))


NO_SETTINGS = DeliverySettings()


@functools.lru_cache(maxsize=4096)
def parse(stored: str | None) -> DeliverySettings:
    """The stored form back; NULL is no settings. Stored settings were validated on the way
    in (against the limits of their time: a limit lowered since does not void them)."""
    if stored is None:
        return NO_SETTINGS
    loaded = json.loads(stored)
    schedule = loaded.get("retry_schedule")
    return DeliverySettings(
        retry_schedule=None if schedule is None else tuple(float(d) for d in schedule),
        timeout=loaded.get("timeout"),
        max_concurrency=loaded.get("max_concurrency"),
        ordered=loaded.get("ordered", False),
    )


@dataclass(frozen=True)
class Change:
    """What one set call gives: a part left as None keeps the stored value; an empty schedule,
    a 0 timeout or a 0 maximum puts that part back to the server's."""

    retry_schedule: tuple[float, ...] | None = None
    timeout: float | None = None
    max_concurrency: int | None = None
    ordered: bool | None = None

    def applied(self, current: DeliverySettings) -> DeliverySettings:
        def part(given: Any, stored: Any, unset: Any) -> Any:
            if given is None:
                return stored
            return None if given == unset else given

        return DeliverySettings(
            part(self.retry_schedule, current.retry_schedule, ()),
            part(self.timeout, current.timeout, 0),
            part(self.max_concurrency, current.max_concurrency, 0),
            current.ordered if self.ordered is None else self.ordered,
        )


def change(
    retry_schedule: Sequence[float] | None,
    timeout: float | None,
    max_concurrency: int | None,
    limits: Limits,
    ordered: bool | None = None,
) -> Change:
    """A caller's change (None: the part is not given), or InvalidArgument naming the field,
    the limit and the flag that sets it."""
    schedule = None if retry_schedule is None else tuple(float(d) for d in retry_schedule)
    for i, delay in enumerate(schedule or ()):
        if not 0 <= delay < math.inf:  # also refuses nan
            raise InvalidArgument(
                f"settings.retry_schedule.delays_seconds[{i}] is {delay:g}; each delay is a "
                "number of seconds, 0 or more."
            )
    if schedule and len(schedule) > limits.max_retries:
        raise InvalidArgument(
            f"settings.retry_schedule has {len(schedule)} delays; this server allows at most "
            f"{limits.max_retries} retries (--max-retries)."
        )
    if schedule and sum(schedule) > limits.max_retry_window:
        raise InvalidArgument(
            f"settings.retry_schedule adds up to {sum(schedule):g} seconds; this server allows "
            f"at most {limits.max_retry_window:g} (--max-retry-window)."
        )
    if timeout is not None:
        if not 0 <= timeout < math.inf:
            raise InvalidArgument(
                f"settings.timeout_seconds is {timeout:g}; it must be a positive number of "
                "seconds (0: the server's, --delivery-timeout)."
            )
        if timeout > limits.max_delivery_timeout:
            raise InvalidArgument(
                f"settings.timeout_seconds is {timeout:g}; this server allows at most "
                f"{limits.max_delivery_timeout:g} (--max-delivery-timeout)."
            )
    if max_concurrency is not None and not 0 <= max_concurrency <= limits.max_webhook_concurrency:
        raise InvalidArgument(
            f"settings.max_concurrency is {max_concurrency}; it must be 1 to "
            f"{limits.max_webhook_concurrency} (--max-webhook-concurrency), or 0 for the "
            f"server's, {limits.default_concurrency}."
        )
    return Change(schedule, timeout, max_concurrency, ordered)
