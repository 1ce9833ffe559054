"""The one place that POSTs to receivers: payload, signature, SSRF-checked connection, no
redirects, per-attempt timeout. testWebhook and the delivery workers both send through it."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from mlflow_webhooks.server import egress, events, observe, validation
from mlflow_webhooks.server.delivery.retry_after import parse_retry_after
from mlflow_webhooks.server.delivery.signing import Secrets, signature_headers

log = logging.getLogger(__name__)

USER_AGENT = "mlflow-webhooks-service/0.1"
MAX_RESPONSE_BODY = 64 * 1024
RETRYABLE_STATUSES = frozenset({408, 429})


class BlockedAddress(OSError):
    """The receiver's host resolved to an address the egress rule refuses."""

    def __init__(self, host: str, refusal: egress.Refusal) -> None:
        super().__init__(
            f"{host} resolves to {refusal.address}, refused by the {refusal.rule} rule: "
            f"{refusal.reason()}"
        )
        self.refusal = refusal


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
    timed_out: bool = False  # no full answer within the timeout

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


def headers(delivery_id: str, sent_at_ms: int, body: bytes, secrets: Secrets) -> dict[str, str]:
    """An attempt's headers; `sent_at_ms` (Unix ms) also decides whether a rotated-out secret
    still signs."""
    timestamp = sent_at_ms // 1000
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(timestamp),
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        **signature_headers(secrets, delivery_id, timestamp, body, sent_at_ms),
    }


class CheckingResolver(AbstractResolver):
    """Resolves names as aiohttp does, then refuses any address the egress rule refuses: the
    check is on the addresses actually connected to, so a name that later points inside is
    refused. Used for direct connections only: through a proxy, the proxy connects."""

    def __init__(self, policy: egress.Policy) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            refusal = self._policy.refusal(host, ipaddress.ip_address(result["host"]))
            if refusal is not None:
                raise BlockedAddress(host, refusal)
        return results

    async def close(self) -> None:
        await self._inner.close()


class Sender:
    """Sends directly, with the egress rule checked on every address connected to, or, with
    an egress proxy, through the proxy (which then decides where connections may go)."""

    def __init__(
        self,
        timeout: float,
        policy: egress.Policy,
        proxy: str | None = None,
        bypass: egress.Bypass | None = None,
        connection_limit: int = 100,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._policy = policy
        self._proxy = URL(proxy) if proxy else None
        self._bypass = bypass or egress.Bypass()
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None
        self._proxied: aiohttp.ClientSession | None = None

    def _new_session(self, resolver: AbstractResolver | None) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._connection_limit, resolver=resolver, ttl_dns_cache=10
        )
        # No cookie jar: a cookie one receiver sets would otherwise go with every later
        # delivery to its host, whoever's webhook it is.
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def start(self) -> None:
        self._session = self._new_session(
            CheckingResolver(self._policy) if self._policy.checks else None
        )
        if self._proxy is not None:
            # A session of its own: its resolver looks up only the proxy's host, which the
            # operator named and which may well be private.
            self._proxied = self._new_session(None)

    async def close(self) -> None:
        for session in (self._session, self._proxied):
            if session is not None:
                await session.close()

    async def send(
        self,
        url: str,
        secrets: Secrets,
        delivery_id: str,
        body: bytes,
        timeout: float | None = None,
    ) -> Attempt:
        """One attempt, within `timeout` seconds (None: --delivery-timeout). Never raises:
        whatever the receiver, the network or a bug here does becomes a failed attempt, so
        the delivery's task lives on and the attempt is logged. No error text holds the URL:
        it names the host only, given separately."""
        assert self._session is not None, "Sender.start() was not awaited"
        sent_at_ms = time.time_ns() // 1_000_000
        started = time.perf_counter()

        def attempt(**kwargs: Any) -> Attempt:
            duration = int((time.perf_counter() - started) * 1000)
            return Attempt(sent_at_ms=sent_at_ms, duration_ms=duration, **kwargs)

        host = validation.host_of(url)
        try:
            limit = self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
            sent = headers(delivery_id, sent_at_ms, body, secrets)
            return await self._post(url, host, sent, body, limit, attempt)
        except Exception as e:
            # The last resort. The message is left out: it may quote the URL.
            log.error(
                "unexpected %s sending delivery %s to %s; recorded as a failed attempt\n%s",
                type(e).__name__,
                delivery_id,
                host,
                "".join(traceback.format_tb(e.__traceback__)),
            )
            return attempt(
                error=f"internal error while sending ({type(e).__name__}); the server log "
                "has the details",
                retryable=True,
            )

    async def _post(
        self,
        url: str,
        host: str,
        sent: dict[str, str],
        body: bytes,
        timeout: aiohttp.ClientTimeout,
        attempt: Callable[..., Attempt],
    ) -> Attempt:
        assert self._session is not None
        refusal = self._literal_refusal(host)
        if refusal is not None:
            observe.record_refusal(refusal.rule, "connect")
            return attempt(error=f"refused by the {refusal.rule} rule: {refusal.reason()}")
        session, proxy = self._session, None
        if self._proxied is not None and not self._bypass.matches(host):
            session, proxy = self._proxied, self._proxy
        try:
            async with session.post(
                url,
                data=body,
                headers=sent,
                allow_redirects=False,
                proxy=proxy,
                timeout=timeout,
            ) as response:
                text = (await response.content.read(MAX_RESPONSE_BODY)).decode(errors="replace")
                status = response.status
                error = None
                if proxy is not None and status == 407:
                    # Only a proxy asks this; a plain-http request went to it, not through.
                    observe.record_refusal(egress.Rule.PROXY, "connect")
                    return attempt(
                        error=f"the egress proxy {_proxy_address(proxy)} refused the request "
                        f"to {host}: HTTP 407 (its credentials are missing or wrong)"
                    )
                if 300 <= status < 400:
                    error = (
                        f"redirect to {_where(response.headers.get('Location', ''), host)} "
                        "not followed: webhook URLs must not redirect"
                    )
                elif status >= 400:
                    error = f"receiver answered HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                return attempt(
                    status=status,
                    body=text,
                    error=error,
                    retry_after=retry_after,
                    retryable=status in RETRYABLE_STATUSES or status >= 500,
                )
        except TimeoutError:
            return attempt(
                error=f"timed out after {timeout.total:g}s", retryable=True, timed_out=True
            )
        except aiohttp.ClientProxyConnectionError as e:
            return attempt(
                error=f"cannot connect to the egress proxy {_proxy_address(self._proxy)}: "
                f"{e.os_error.strerror or type(e.os_error).__name__}",
                retryable=True,
            )
        except aiohttp.ClientHttpProxyError as e:
            # The proxy answered CONNECT with something other than 200: its refusal (or its
            # failure to reach the receiver), judged by the same status rules as an answer.
            observe.record_refusal(egress.Rule.PROXY, "connect")
            return attempt(
                error=f"the egress proxy {_proxy_address(self._proxy)} refused the connection "
                f"to {host}: HTTP {e.status} {e.message}",
                retryable=e.status in RETRYABLE_STATUSES or e.status >= 500,
            )
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, BlockedAddress):
                observe.record_refusal(e.os_error.refusal.rule, "connect")
                return attempt(error=f"refused: {e.os_error}")
            return attempt(
                error=f"cannot connect to {host}: {_os_reason(e.os_error)}", retryable=True
            )
        except aiohttp.InvalidURL as e:
            # Only URLs stored before validation read them as the sender does get here.
            reason = e.description or "aiohttp cannot send to it"
            return attempt(error=f"invalid webhook URL: host {host} {reason}")
        except (aiohttp.ClientError, OSError) as e:
            return attempt(error=_describe(e), retryable=True)

    def _literal_refusal(self, host: str) -> egress.Refusal | None:
        """The egress rule for a URL naming an address, which no resolver sees; applied
        through a proxy too, as at create time."""
        if not self._policy.checks:
            return None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        return self._policy.refusal(host, address)


def _proxy_address(proxy: URL | None) -> str:
    """The proxy's host and port, never its credentials."""
    return f"{proxy.host}:{proxy.port}" if proxy is not None else ""


def _os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _describe(error: aiohttp.ClientError | OSError) -> str:
    """What went wrong, from the error's type and fields that never hold a URL: aiohttp's
    own messages quote the receiver's URL (spelt as yarl normalised it, so it cannot be
    found and cut out) and the proxy's, either of which may hold credentials."""
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the receiver closed the connection before answering"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"the receiver's answer is not valid HTTP ({type(error).__name__})"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the receiver's answer ended early or is malformed (ClientPayloadError)"
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {_os_reason(error)}"
    return type(error).__name__


def _where(location: str, host: str) -> str:
    """A redirect's target, scheme and host only (its path may hold credentials too)."""
    try:
        target = URL(location)
    except ValueError:
        return "an invalid location"
    if not target.raw_host:
        return f"another path on {host}"
    return f"{target.scheme}://{target.raw_host}/…"
