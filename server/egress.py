"""Where deliveries may go: the egress rule of --allow-private-urls and --egress-allow, and the
proxy exceptions of --egress-proxy-bypass. Pure (no I/O): the same rule judges a URL at
create/update time and each address the sender connects to, and is unit-tested in-process.

Addresses in an IPv6 transition format (IPv4-mapped, 6to4, Teredo, NAT64) are judged by the
IPv4 address inside, so none can reach a refused address in disguise."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"[a-z0-9_-]{1,63}")  # of a lower-cased DNS name
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Instance metadata services outside 169.254.0.0/16: AWS over IPv6, Alibaba Cloud.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200")
)


class Rule(StrEnum):
    """Why a destination was refused; the values are the metric's fixed label set."""

    PRIVATE = "private"  # loopback, private, CGNAT, reserved, ... and not allowed
    METADATA = "metadata"  # link-local or a cloud metadata address, not named exactly
    PROXY = "proxy"  # the egress proxy refused it


@dataclass(frozen=True)
class Refusal:
    rule: Rule
    address: IPAddress

    def reason(self) -> str:
        """Which rule refused, and which flag would allow it."""
        if self.rule is Rule.METADATA:
            return (
                f"{self.address} is a link-local or cloud metadata address; such addresses are "
                "refused even when an allowed CIDR contains them. Name it exactly "
                f"(--egress-allow {self.address}) to allow it, or start the server with "
                "--allow-private-urls, which allows every address."
            )
        return (
            f"{self.address} is a non-public address. Use a publicly routable host, or allow "
            f"it with --egress-allow (its address {self.address}, a CIDR holding it, or the "
            "host name), or start the server with --allow-private-urls."
        )


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address carries, if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
    # Python's is_global follows the IANA registry, which has changed for 64:ff9b::/96
    # between versions; the embedded address decides, whatever the version says.
    if embedded is None and ip in _NAT64:
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return embedded


def is_public_address(ip: IPAddress) -> bool:
    """True for an address a webhook may reach with no allowance: globally routable, and not
    a private address hidden inside an IPv6 transition format."""
    embedded = embedded_ipv4(ip)
    if embedded is not None and not is_public_address(embedded):
        return False
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or site_local)


def is_link_local_or_metadata(ip: IPAddress) -> bool:
    inner = embedded_ipv4(ip) or ip
    return (
        ip.is_link_local
        or inner.is_link_local
        or ip in METADATA_ADDRESSES
        or (inner in METADATA_ADDRESSES)
    )


def _host_name(name: str) -> str:
    return name.strip().lower().rstrip(".")


@dataclass(frozen=True)
class Policy:
    """The egress rule: public addresses always; private ones when --allow-private-urls is on,
    or when a CIDR or host name of --egress-allow allows them; link-local and metadata
    addresses only with --allow-private-urls or when named exactly."""

    allow_private: bool = False
    networks: tuple[IPNetwork, ...] = ()
    exact: frozenset[IPAddress] = frozenset()  # single addresses named (bare, /32 or /128)
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # from *.suffix, kept with their leading dot

    @classmethod
    def of(cls, allow_private: bool, entries: tuple[str, ...]) -> Policy:
        networks: list[IPNetwork] = []
        exact: set[IPAddress] = set()
        names: set[str] = set()
        suffixes: list[str] = []
        for entry in entries:
            kind, value = parse_entry(entry)
            if kind == "network":
                assert isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network)
                networks.append(value)
                if value.num_addresses == 1:
                    exact.add(value.network_address)
            elif kind == "suffix":
                suffixes.append(str(value))
            else:
                names.add(str(value))
        return cls(
            allow_private, tuple(networks), frozenset(exact), frozenset(names), tuple(suffixes)
        )

    @property
    def checks(self) -> bool:
        """False when every address is allowed (--allow-private-urls): nothing to resolve."""
        return not self.allow_private

    def name_allowed(self, host: str) -> bool:
        name = _host_name(host)
        return name in self.names or any(name.endswith(s) for s in self.suffixes)

    def refusal(self, host: str, address: IPAddress) -> Refusal | None:
        """None if `host`, resolved to `address`, may be connected to; else why not."""
        if self.allow_private or is_public_address(address):
            return None
        if is_link_local_or_metadata(address):
            inner = embedded_ipv4(address) or address
            if address in self.exact or inner in self.exact:
                return None
            return Refusal(Rule.METADATA, address)
        inner = embedded_ipv4(address) or address
        if any(address in n or inner in n for n in self.networks) or self.name_allowed(host):
            return None
        return Refusal(Rule.PRIVATE, address)


def parse_entry(entry: str) -> tuple[str, IPNetwork | str]:
    """One --egress-allow entry: ("network", CIDR or address), ("suffix", ".corp.example")
    for *.corp.example, or ("name", exact host name). ValueError says what is wrong."""
    text = entry.strip()
    try:
        return "network", ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        if _looks_numeric(text):
            raise ValueError(
                f"{text!r} is not a CIDR block or an address ({e}); write it as 10.1.0.0/16, "
                "fd12::/48 or 10.1.2.3, with no host bits set"
            ) from None
    if text.startswith("*."):
        suffix = _host_name(text[2:])
        _check_name(suffix, text)
        return "suffix", "." + suffix
    name = _host_name(text)
    _check_name(name, text)
    return "name", name


def _looks_numeric(text: str) -> bool:
    return any(c.isdigit() for c in text) and all(c in "0123456789abcdefABCDEF.:/" for c in text)


def _check_name(name: str, shown: str) -> None:
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{shown!r} is not a host name, *.suffix, CIDR block or address "
            "(host names are letters, digits, hyphens and dots, like ci.corp.example)"
        )


@dataclass(frozen=True)
class Bypass:
    """--egress-proxy-bypass, read as NO_PROXY is by curl and most HTTP clients: `*` for every
    host; a host name for itself and every name under it (a leading `.` or `*.` means the
    same); an address or CIDR for URLs that name such an address (names are not resolved
    to decide)."""

    everything: bool = False
    names: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, entries: tuple[str, ...]) -> Bypass:
        names: list[str] = []
        networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip()
            if text == "*":
                return cls(everything=True)
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = _host_name(text.removeprefix("*").removeprefix("."))
            _check_name(name, text)
            names.append(name)
        return cls(False, tuple(names), tuple(networks))

    def __bool__(self) -> bool:
        return self.everything or bool(self.names or self.networks)

    def matches(self, host: str) -> bool:
        """True when deliveries to `host` (a URL's host, as the sender reads it) go direct."""
        if self.everything:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            name = _host_name(host)
            return any(name == n or name.endswith("." + n) for n in self.names)
        return any(address in n for n in self.networks)
