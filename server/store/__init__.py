"""Storage: peewee models and the Store that the core calls."""

from server.store.store import Page, Store, WebhookRecord, now_ms

__all__ = ["Page", "Store", "WebhookRecord", "now_ms"]
