"""Storage: peewee models and the Store that the core calls."""

from server.store.models import DeliveryStatus, WebhookStatus
from server.store.store import (
    AttemptRecord,
    DatabaseUnavailable,
    DeliveryRecord,
    DiskFull,
    EventRecord,
    Health,
    Outcome,
    Outgoing,
    Page,
    Pruned,
    Store,
    WebhookRecord,
    now_ms,
)

__all__ = [
    "AttemptRecord",
    "DatabaseUnavailable",
    "DeliveryRecord",
    "DeliveryStatus",
    "DiskFull",
    "EventRecord",
    "Health",
    "Outcome",
    "Outgoing",
    "Page",
    "Pruned",
    "Store",
    "WebhookRecord",
    "WebhookStatus",
    "now_ms",
]
