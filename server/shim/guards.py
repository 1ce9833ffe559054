"""What a web page in a browser must not be able to make the shim do, as pure rules.

- A cross-site form or `fetch` may POST `text/plain`, form or multipart bodies without the
  browser asking the server first (no CORS preflight); `application/json` always needs a
  preflight, which the shim never grants. So a body is taken only as `application/json`.
- DNS rebinding: a page of attacker.example re-points its name at 127.0.0.1 and then reads
  and writes a service bound to loopback as same-origin. The request still says
  `Host: attacker.example`, so a service bound to loopback answers loopback names only."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

JSON = "application/json"
LOOPBACK_NAMES = frozenset({"localhost"})


def is_json(content_type: str | None) -> bool:
    """True for `application/json`, with or without parameters such as a charset."""
    if content_type is None:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON


def host_name(host_header: str) -> str | None:
    """The name or address of a Host header without its port, lower case, without a
    trailing dot; None when it is not of the form host[:port] or [IPv6][:port]."""
    value = host_header.strip()
    if value.startswith("["):
        literal, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not _is_port_part(rest)):
            return None
        try:
            return str(ipaddress.IPv6Address(literal))
        except ValueError:
            return None
    name, colon, port = value.rpartition(":")
    if colon and _is_port_part(colon + port):
        value = name
    if not value or ":" in value:
        return None
    return value.rstrip(".").lower() or None


def _is_port_part(text: str) -> bool:
    return text.startswith(":") and text[1:].isascii() and text[1:].isdigit()


def is_loopback_name(name: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 (also as an IPv4-mapped IPv6 address)."""
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True)
class HostRule:
    """Which Host headers the shim answers: with `any_host`, all of them."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    any_host: bool = True

    @classmethod
    def of(cls, bind_host: str, allowed: Iterable[str]) -> HostRule:
        """Bound to loopback, or given `allowed` names (exact, `*.suffix`, or `*` for any):
        loopback names and the allowed ones. Otherwise any name."""
        allowed = [a.strip().rstrip(".").lower() for a in allowed if a.strip()]
        if "*" in allowed or (not allowed and not is_loopback_name(bind_host.strip("[]"))):
            return cls()
        exact = frozenset(a for a in allowed if not a.startswith("*."))
        suffixes = tuple(a[1:] for a in allowed if a.startswith("*."))
        return cls(names=exact, suffixes=suffixes, any_host=False)

    def allows(self, host_header: str | None) -> bool:
        # A request without a Host header (HTTP/1.0) cannot come from a browser.
        if self.any_host or host_header is None:
            return True
        name = host_name(host_header)
        if name is None:
            return False
        return is_loopback_name(name) or name in self.names or name.endswith(self.suffixes)
