"""Every rule on what a caller may send, in one place, with MLflow's messages where MLflow's
clients match on them. Both transports reach these through the core."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable

from aiohttp.helpers import is_canonical_ipv4_address, is_ip_address
from yarl import URL

from mlflow_webhooks.server import egress, events
from mlflow_webhooks.server.errors import InvalidArgument

MAX_URL = 500
MAX_DESCRIPTION = 1000
MAX_SECRET = 1000
# A rotated-out secret signs deliveries for at most a week: long enough to reach every
# receiver's owner, short enough that a leaked secret does not stay good for long.
DEFAULT_OVERLAP_SECONDS = 24 * 3600
MAX_OVERLAP_SECONDS = 7 * 24 * 3600
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# MLflow's rule, in ASCII: re.IGNORECASE would also match U+017F (long s) as s and the
# Kelvin sign as k.
_NAME = re.compile(r"(?=.{1,63}\Z)[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", re.ASCII)
# A DNS name as the sender looks it up: ASCII labels (yarl gives IDNA names in their xn--
# form) joined by dots. Underscores occur in real names, so they are allowed.
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?")

IPAddress = egress.IPAddress


def name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise InvalidArgument(
            f"Webhook name {value!r} is invalid. It must be 1 to 63 characters, start and end "
            "with a letter or digit, and contain only letters, digits, dots (.), underscores (_) "
            "and hyphens (-)."
        )
    return value


def description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"Webhook description is {len(value)} characters; "
            f"at most {MAX_DESCRIPTION} are allowed."
        )
    return value


def secret(value: str) -> str:
    if len(value) > MAX_SECRET:
        raise InvalidArgument(
            f"Webhook secret is {len(value)} characters; at most {MAX_SECRET} are allowed."
        )
    return value


def overlap_seconds(value: int) -> int:
    if not 0 <= value <= MAX_OVERLAP_SECONDS:
        raise InvalidArgument(
            f"overlap_seconds must be between 0 and {MAX_OVERLAP_SECONDS} (7 days), got {value}; "
            f"leave it out for {DEFAULT_OVERLAP_SECONDS} (24 hours)."
        )
    return value


def event(entity: int, action: int) -> events.Event:
    if (entity, action) in events.EVENTS:
        return (entity, action)
    if entity not in {e for (e, _) in events.EVENTS}:
        valid = sorted({events.entity_name(e) for (e, _) in events.EVENTS})
        raise InvalidArgument(
            f"Invalid webhook event entity {_enum_name(events.entity_name, entity)!r}. "
            f"Set entity to one of: {valid}"
        )
    raise InvalidArgument(
        f"Invalid action {_enum_name(events.action_name, action)!r} for entity "
        f"'{events.entity_name(entity)}'. Valid actions are: {events.valid_actions(entity)}"
    )


def event_list(pairs: Iterable[tuple[int, int]]) -> list[events.Event]:
    """Validates each pair and collapses duplicates, keeping the caller's order."""
    checked = [event(entity, action) for entity, action in pairs]
    if not checked:
        raise InvalidArgument("Webhook events cannot be empty")
    return list(dict.fromkeys(checked))


def _enum_name(namer: object, number: int) -> str:
    try:
        return namer(number)  # type: ignore[operator]
    except ValueError:
        return str(number)


def time_range(since: int | None, until: int | None) -> tuple[int | None, int | None]:
    """A [since, until) filter in Unix milliseconds; either end may be open (None)."""
    for field, value in (("since_timestamp", since), ("until_timestamp", until)):
        if value is not None and value < 0:
            raise InvalidArgument(
                f"{field} must be Unix milliseconds (0 or more), got {value}: "
                "for example 1767225600000 for 2026-01-01T00:00:00Z."
            )
    if since is not None and until is not None and since >= until:
        raise InvalidArgument(
            f"since_timestamp ({since}) must be before until_timestamp ({until}): "
            "the range is [since_timestamp, until_timestamp)."
        )
    return since, until


def batch_size(value: int, field: str) -> int:
    """How many items one bulk call may take: 1 to MAX_PAGE_SIZE."""
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"{field} must be between 1 and {MAX_PAGE_SIZE}, got {value}.")
    return value


def page_size(value: int) -> int:
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"max_results must be between 1 and {MAX_PAGE_SIZE} (0 or unset means "
            f"{DEFAULT_PAGE_SIZE}), got {value}."
        )
    return value


async def resolve(host: str) -> list[IPAddress]:
    """Every address `host` resolves to (one, if it is an address already)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


async def url(value: str, allowed_schemes: tuple[str, ...], policy: egress.Policy) -> str:
    """The URL if deliveries can be sent to it. It is read with yarl, the parser aiohttp
    sends with, so the host judged here is the host the sender connects to."""
    if not value.strip():
        raise InvalidArgument(f"Webhook URL cannot be empty or just whitespace: {value!r}")
    if len(value) > MAX_URL:
        raise InvalidArgument(
            f"Webhook URL is {len(value)} characters; at most {MAX_URL} are allowed."
        )
    try:
        parsed = URL(value)
    except ValueError as e:  # a bad port, IPv6 literal or IDNA name, a backslash, ...
        raise InvalidArgument(f"Invalid webhook URL {value!r}: {e!r}") from None
    if parsed.scheme not in allowed_schemes:
        raise InvalidArgument(
            f"Invalid webhook URL scheme: {parsed.scheme!r}. "
            f"Allowed schemes are: {', '.join(allowed_schemes)}."
        )
    host = parsed.raw_host
    if not host:
        raise InvalidArgument(f"Webhook URL must include a hostname: {value!r}")
    _sendable_host(host, value)
    if policy.checks:
        await allowed_host(host, value, policy)
    return value


def _sendable_host(host: str, shown: str) -> None:
    """Refuses a host aiohttp would refuse on every send, as aiohttp tells them apart: what
    looks numeric is an address and must be one, written canonically (aiohttp refuses
    127.1 and 2130706433, which the resolver would take); anything else is a DNS name."""
    if is_ip_address(host):
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise InvalidArgument(
                    f"Invalid webhook URL {shown!r}: {host!r} is not an IPv6 address."
                ) from None
        elif not is_canonical_ipv4_address(host):
            raise InvalidArgument(
                f"Invalid webhook URL {shown!r}: {host!r} is not a canonical IPv4 address; "
                "write it as four decimal numbers, such as 192.0.2.10."
            )
    elif not _HOST_NAME.fullmatch(host) or len(host) > 253:
        raise InvalidArgument(f"Invalid webhook URL {shown!r}: {host!r} is not a valid host name.")


def host_of(url: str) -> str:
    """The host of a stored webhook URL as the sender connects to it, for logs and error
    messages: never its path, query or user info, which may hold credentials."""
    try:
        return URL(url).raw_host or ""
    except ValueError:
        return ""


class EgressRefused(InvalidArgument):
    """A webhook URL the egress rule refuses; `rule` names which part refused it."""

    def __init__(self, message: str, rule: egress.Rule) -> None:
        super().__init__(message)
        self.rule = rule


async def allowed_host(host: str, shown: str, policy: egress.Policy) -> list[IPAddress]:
    """Resolves `host` and refuses it unless the egress rule allows every address (the SSRF
    rule: public addresses, and the private ones --egress-allow names)."""
    try:
        addresses = await resolve(host)
    except (OSError, UnicodeError) as e:
        raise InvalidArgument(
            f"Webhook URL host {host!r} does not resolve ({e}); use a host name with a public "
            "DNS record. Offline, or for a receiver on your own machine, start the server "
            "with --allow-private-urls: it skips this public-DNS rule."
        ) from None
    for address in addresses:
        refusal = policy.refusal(host, address)
        if refusal is not None:
            raise EgressRefused(
                f"Webhook URL {shown!r} resolves to {address}, refused by the {refusal.rule} "
                f"rule: {refusal.reason()}",
                refusal.rule,
            )
    return addresses


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "number": (int, float),
    "integer": (int,),
}


def event_data(checked_event: events.Event, data: object) -> dict[str, object]:
    """The `data` of a published event: a JSON object holding the event's fields, each of
    its JSON type (extra fields are kept and delivered)."""
    name = f"{events.entity_name(checked_event[0])}.{events.action_name(checked_event[1])}"
    if not isinstance(data, dict):
        raise InvalidArgument(f"data must be a JSON object with the fields of {name}")
    for spec in events.EVENTS[checked_event].fields:
        if spec.name not in data:
            raise InvalidArgument(
                f"data.{spec.name} is required for {name} events "
                f"(a {spec.json_type}{' or null' if spec.nullable else ''})"
            )
        value = data[spec.name]
        if value is None and spec.nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, _JSON_TYPES[spec.json_type]):
            raise InvalidArgument(
                f"data.{spec.name} must be a {spec.json_type}"
                f"{' or null' if spec.nullable else ''} for {name} events, "
                f"got {type(value).__name__} {value!r:.50}"
            )
    return data


def idempotency_key(value: str) -> str:
    if len(value) > 255:
        raise InvalidArgument(
            f"idempotency_key is {len(value)} characters; at most 255 are allowed."
        )
    return value
