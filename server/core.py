"""The operations of the service. Everything a call means is decided here, once, for both
transports: inputs are plain Python values, results are store records, failures are
server.errors exceptions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from generated import webhooks_pb2 as pb
from server import events, validation
from server.config import Config
from server.delivery.sender import Attempt, Sender, payload
from server.errors import InvalidArgument, NotFound
from server.store import Page, Store, WebhookRecord, now_ms

T = TypeVar("T")


def required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(
            f"Missing value for required parameter '{field}'. "
            "See the API docs for more information about request parameters."
        )
    return value


def not_found(webhook_id: str) -> NotFound:
    return NotFound(f"Webhook with ID {webhook_id} not found.")


class WebhookCore:
    def __init__(self, config: Config, store: Store, sender: Sender, threads: int = 8) -> None:
        self._config = config
        self._store = store
        self._sender = sender
        # peewee is synchronous: its calls run here so the event loop never waits on SQL.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def db(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _url(self, url: str) -> str:
        return await validation.url(
            url, self._config.allowed_schemes, self._config.allow_private_urls
        )

    async def create_webhook(
        self,
        name: str,
        url: str,
        event_pairs: Sequence[tuple[int, int]],
        description: str | None = None,
        secret: str | None = None,
        status: int | None = None,
    ) -> WebhookRecord:
        record_name = validation.name(required(name, "name"))
        checked_events = validation.event_list(event_pairs)
        record_url = await self._url(required(url, "url"))
        now = now_ms()
        record = WebhookRecord(
            id=str(uuid.uuid4()),
            name=record_name,
            url=record_url,
            events=checked_events,
            description=validation.description(description) if description else None,
            secret=validation.secret(secret) if secret else None,
            status=status or pb.ACTIVE,
            creation_timestamp=now,
            last_updated_timestamp=now,
        )
        return await self.db(self._store.create_webhook, record)

    async def get_webhook(self, webhook_id: str) -> WebhookRecord:
        record = await self.db(self._store.get_webhook, required(webhook_id, "webhook_id"))
        if record is None:
            raise not_found(webhook_id)
        return record

    async def list_webhooks(self, max_results: int, page_token: str) -> Page:
        return await self.db(
            self._store.list_webhooks, validation.page_size(max_results), page_token or None
        )

    async def update_webhook(
        self,
        webhook_id: str,
        name: str = "",
        url: str = "",
        event_pairs: Sequence[tuple[int, int]] = (),
        description: str | None = None,
        secret: str | None = None,
        status: int | None = None,
    ) -> WebhookRecord:
        """Partial update: empty name/url/events and None description/secret/status keep the
        stored value; an empty secret turns signing off."""
        required(webhook_id, "webhook_id")
        changes: dict[str, object] = {}
        if name:
            changes["name"] = validation.name(name)
        if event_pairs:
            changes["events"] = validation.event_list(event_pairs)
        if description is not None:
            changes["description"] = validation.description(description) or None
        if secret is not None:
            changes["secret"] = validation.secret(secret) or None
        if status is not None:
            changes["status"] = status
        if url:
            changes["url"] = await self._url(url)
        updated = await self.db(
            self._store.update_webhook, webhook_id, lambda r: replace(r, **changes)
        )
        if updated is None:
            raise not_found(webhook_id)
        return updated

    async def delete_webhook(self, webhook_id: str) -> None:
        if not await self.db(self._store.delete_webhook, required(webhook_id, "webhook_id")):
            raise not_found(webhook_id)

    async def test_webhook(self, webhook_id: str, event: tuple[int, int] | None) -> Attempt:
        """Sends the example payload of `event` (default: the webhook's first) once, now,
        whatever the webhook's status."""
        webhook = await self.get_webhook(webhook_id)
        chosen = validation.event(*event) if event is not None else webhook.events[0]
        body = payload(chosen, events.EVENTS[chosen].example)
        return await self._sender.send(webhook.url, webhook.secret, str(uuid.uuid4()), body)
