"""The one place that POSTs to receivers: payload, signature, SSRF-checked connection, no
redirects, per-attempt timeout. testWebhook and the delivery workers both send through it."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from server import events, validation

USER_AGENT = "mlflow-webhooks-service/0.1"
MAX_RESPONSE_BODY = 64 * 1024
RETRYABLE_STATUSES = frozenset({408, 429})


class BlockedAddress(OSError):
    """The receiver's host resolved to an address webhooks may not reach."""


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    sent_at_ms: int  # Unix milliseconds
    duration_ms: int
    status: int | None = None
    body: str = ""
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait
    retryable: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def payload(event: events.Event, data: dict[str, Any], occurred_at: str) -> bytes:
    """The body MLflow sends: entity and action lower-case, an ISO-8601 UTC timestamp."""
    entity, action = event
    return json.dumps(
        {
            "entity": events.entity_name(entity),
            "action": events.action_name(action),
            "timestamp": occurred_at,
            "data": data,
        }
    ).encode()


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(delivery_id: str, timestamp: int, body: bytes, secret: str | None) -> dict[str, str]:
    result = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(timestamp),
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        result["X-MLflow-Signature"] = result["webhook-signature"] = signature(
            secret, delivery_id, timestamp, body
        )
    return result


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


class PublicResolver(AbstractResolver):
    """Resolves names as aiohttp does, then refuses any non-public address: the check is on
    the addresses actually connected to, so a name that later points inside is refused."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not validation.is_public_address(ipaddress.ip_address(result["host"])):
                raise BlockedAddress(f"{host} resolves to non-public address {result['host']}")
        return results

    async def close(self) -> None:
        await self._inner.close()


class Sender:
    def __init__(self, timeout: float, allow_private: bool, connection_limit: int = 100) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._allow_private = allow_private
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._connection_limit,
            resolver=None if self._allow_private else PublicResolver(),
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, url: str, secret: str | None, delivery_id: str, body: bytes) -> Attempt:
        """One attempt. Never raises for anything the receiver or network does."""
        assert self._session is not None, "Sender.start() was not awaited"
        sent_at_ms = time.time_ns() // 1_000_000
        timestamp = sent_at_ms // 1000
        started = time.perf_counter()

        def attempt(**kwargs: Any) -> Attempt:
            duration = int((time.perf_counter() - started) * 1000)
            return Attempt(sent_at_ms=sent_at_ms, duration_ms=duration, **kwargs)

        host = urlsplit(url).hostname or ""
        if not self._allow_private and _is_private_literal(host):
            return attempt(error=f"refused: {host} is not a public address")
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers(delivery_id, timestamp, body, secret),
                allow_redirects=False,
            ) as response:
                text = (await response.content.read(MAX_RESPONSE_BODY)).decode(errors="replace")
                status = response.status
                error = None
                if 300 <= status < 400:
                    location = response.headers.get("Location", "")
                    error = f"redirect to {location!r} not followed: webhook URLs must not redirect"
                elif status >= 400:
                    error = f"receiver answered HTTP {status}"
                return attempt(
                    status=status,
                    body=text,
                    error=error,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    retryable=status in RETRYABLE_STATUSES or status >= 500,
                )
        except TimeoutError:
            return attempt(error=f"timed out after {self._timeout.total:g}s", retryable=True)
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, BlockedAddress):
                return attempt(error=f"refused: {e.os_error}")
            return attempt(error=f"cannot connect: {e.os_error or e}", retryable=True)
        except (aiohttp.ClientError, OSError) as e:
            # aiohttp may quote the whole URL, which can hold credentials; the log and the
            # delivery log get the host only.
            text = str(e).replace(url, f"{urlsplit(url).scheme}://{host}/…")
            return attempt(error=f"{type(e).__name__}: {text}", retryable=True)


def _is_private_literal(host: str) -> bool:
    try:
        return not validation.is_public_address(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return False
