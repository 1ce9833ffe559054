"""What the store hands out and takes in: plain frozen dataclasses, no SQL."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from mlflow_webhooks.server.delivery.settings import NO_SETTINGS, DeliverySettings
from mlflow_webhooks.server.delivery.signing import Secrets
from mlflow_webhooks.server.events import Event
from mlflow_webhooks.server.store.models import DeliveryStatus


@dataclass(frozen=True)
class WebhookRecord:
    id: str
    name: str
    url: str
    events: list[Event]
    status: int
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    secret: str | None = field(default=None, repr=False)
    # The secret a rotation replaced, signing too until previous_secret_until (Unix ms).
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_until: int | None = None

    @property
    def secrets(self) -> Secrets:
        return Secrets(self.secret, self.previous_secret, self.previous_secret_until)


@dataclass(frozen=True)
class AttemptRecord:
    number: int
    timestamp: int  # Unix milliseconds
    duration_ms: int
    response_status: int | None
    response_body: str
    error: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    event_id: str
    webhook_id: str
    event: Event
    status: DeliveryStatus
    next_attempt_timestamp: int | None
    creation_timestamp: int
    is_test: bool
    attempts: list[AttemptRecord] = field(default_factory=list)
    attempt_count: int = 0
    last_attempt: AttemptRecord | None = None  # without its response body
    # What was sent: the event's data (JSON text) and time, read by get_delivery only.
    data: str | None = None
    occurred_at: str | None = None
    # The body as sent: stored at publish; the core makes it from the two above for events
    # stored before bodies were kept.
    payload: str | None = None


@dataclass(frozen=True)
class EventRecord:
    id: str
    event: Event
    data: str  # JSON object text
    occurred_at: str  # ISO-8601, as it goes into the payload
    creation_timestamp: int
    idempotency_key: str | None = None
    payload: str | None = None  # the body every attempt sends, made once at publish


@dataclass(frozen=True)
class Outgoing:
    """A delivery ready to send: what the sender needs, read in one query."""

    delivery_id: str
    webhook_id: str
    attempt_count: int
    event: Event
    data: str
    occurred_at: str
    payload: str | None  # the stored body; None for events stored before it was kept
    url: str | None  # None when the webhook is gone
    secrets: Secrets = field(default_factory=Secrets)
    webhook_active: bool = False
    manual_attempts: int = 0  # of attempt_count, the redelivers
    # The webhook's, read with the row at each claim: a change applies to the next attempt.
    settings: DeliverySettings = NO_SETTINGS


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt, to be recorded with others in one transaction."""

    delivery_id: str
    attempt: AttemptRecord
    status: DeliveryStatus
    next_attempt_timestamp: int | None
    webhook_to_disable: str | None = None  # a webhook id to set DISABLED (after a 410)
    disable_reason: str = ""  # why, as the console and getWebhookHealth show it
    # The ordered webhook whose turn this attempt's delivery had, when the attempt ended it:
    # the transaction that writes the result passes the turn to the webhook's next delivery.
    passes_turn: str | None = None


@dataclass(frozen=True)
class Health:
    """How one webhook is doing (getWebhookHealth)."""

    webhook_id: str
    last_delivery: DeliveryRecord | None
    deliveries: int  # created since the window's start
    failures: int  # of those, FAILED or PENDING after a failed attempt
    disabled_reason: str | None = None
    disabled_timestamp: int | None = None
    previous_secret_until: int | None = None  # while a rotated-out secret still signs


@dataclass(frozen=True)
class Pruned:
    deliveries: int
    events: int


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_token: str | None


Published = tuple[str, list[str]]  # an event id and its delivery ids


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def time_ordered_id(ms: int | None = None) -> str:
    """A new event or delivery id: a UUID of RFC 9562's version 7, its first 48 bits the
    Unix milliseconds (`ms`, now when None), the other 74 random. The rows and index entries
    of ids made one after another then sit side by side, so a transaction of many inserts
    writes a few index pages, where random (version 4) ids touch a page each."""
    stamp = now_ms() if ms is None else ms
    random = int.from_bytes(os.urandom(10))
    value = (stamp & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (random >> 68) << 64
    value |= 0b10 << 62 | random & 0x3FFF_FFFF_FFFF_FFFF
    # What str(uuid.UUID(int=value)) gives, without its constructor's checks (a few us per
    # delivery on the publish path).
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
