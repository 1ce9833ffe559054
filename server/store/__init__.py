"""Storage: peewee models and the Store that the core calls, with the records it hands out,
its page tokens and its connection set-up in small modules of their own."""

from mlflow_webhooks.server.store.connection import (
    DatabaseUnavailable,
    DiskFull,
    WriteLockBusy,
    open_database,
    sqlite_path,
)
from mlflow_webhooks.server.store.models import DeliveryStatus, WebhookStatus
from mlflow_webhooks.server.store.pagination import decode_cursor, encode_cursor
from mlflow_webhooks.server.store.records import (
    AttemptRecord,
    DeliveryRecord,
    EventRecord,
    Health,
    Outcome,
    Outgoing,
    Page,
    Pruned,
    WebhookRecord,
    now_ms,
    time_ordered_id,
)
from mlflow_webhooks.server.store.store import SCHEMA_VERSION, Store

__all__ = [
    "SCHEMA_VERSION",
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
    "WriteLockBusy",
    "decode_cursor",
    "encode_cursor",
    "now_ms",
    "open_database",
    "sqlite_path",
    "time_ordered_id",
]
