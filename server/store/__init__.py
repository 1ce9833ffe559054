"""Storage: peewee models and the Store that the core calls."""

from server.store.models import DeliveryStatus, WebhookStatus
from server.store.store import (
    AttemptRecord,
    DatabaseUnavailable,
    DeliveryRecord,
    EventRecord,
    Outcome,
    Outgoing,
    Page,
    Store,
    WebhookRecord,
    now_ms,
)

__all__ = [
    "AttemptRecord",
    "DatabaseUnavailable",
    "DeliveryRecord",
    "DeliveryStatus",
    "EventRecord",
    "Outcome",
    "Outgoing",
    "Page",
    "Store",
    "WebhookRecord",
    "WebhookStatus",
    "now_ms",
]
