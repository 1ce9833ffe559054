"""server.egress on its own: which addresses --egress-allow lets through, the metadata rule,
the messages, and --egress-proxy-bypass matching."""

from __future__ import annotations

import ipaddress

import pytest

from mlflow_webhooks.server import egress
from mlflow_webhooks.server.egress import Bypass, Policy, Rule


def refusal(policy: Policy, host: str, address: str) -> Rule | None:
    found = policy.refusal(host, ipaddress.ip_address(address))
    return found.rule if found else None


ALLOW = Policy.of(
    False,
    ("127.0.0.2", "10.20.0.0/16", "fd12:3456::/48", "ci.corp.example", "*.build.example"),
)


@pytest.mark.parametrize(
    "host,address",
    [
        ("8.8.8.8", "8.8.8.8"),  # public: always
        ("hooks.example.com", "93.184.216.34"),
        ("127.0.0.2", "127.0.0.2"),  # a bare address
        ("x", "10.20.255.1"),  # inside an allowed CIDR
        ("x", "::ffff:10.20.1.1"),  # the same, IPv4-mapped
        ("x", "fd12:3456::9"),
        ("ci.corp.example", "10.99.0.1"),  # an exact name, whatever private address
        ("CI.Corp.Example.", "10.99.0.1"),  # names compare as DNS does
        ("a.build.example", "192.168.1.1"),
        ("a.b.build.example", "172.16.0.1"),
    ],
)
def test_allowed(host: str, address: str) -> None:
    assert refusal(ALLOW, host, address) is None


@pytest.mark.parametrize(
    "host,address",
    [
        ("127.0.0.3", "127.0.0.3"),  # next to the allowed one
        ("x", "10.21.0.1"),
        ("x", "::1"),
        ("build.example", "10.0.0.1"),  # *.suffix is for names under it, not itself
        ("evilbuild.example", "10.0.0.1"),
        ("ci.corp.example.evil.test", "10.0.0.1"),
        ("x", "100.64.0.1"),  # CGNAT
        ("x", "0.0.0.0"),
    ],
)
def test_other_private_refused(host: str, address: str) -> None:
    assert refusal(ALLOW, host, address) is Rule.PRIVATE
    assert refusal(Policy(), host, address) is Rule.PRIVATE


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "100.100.100.200"],
)
def test_metadata_not_allowed_by_a_cidr_or_name_holding_it(address: str) -> None:
    wide = Policy.of(
        False,
        ("0.0.0.0/0", "::/0", "169.254.0.0/16", "fd00::/8", "100.64.0.0/10", "meta.internal"),
    )
    assert refusal(wide, "meta.internal", address) is Rule.METADATA
    assert refusal(Policy(), "x", address) is Rule.METADATA


def test_metadata_allowed_when_named_exactly() -> None:
    policy = Policy.of(False, ("169.254.169.254", "fd00:ec2::254/128"))
    assert refusal(policy, "x", "169.254.169.254") is None
    assert refusal(policy, "x", "::ffff:169.254.169.254") is None
    assert refusal(policy, "x", "fd00:ec2::254") is None
    assert refusal(policy, "x", "169.254.169.253") is Rule.METADATA
    assert refusal(policy, "x", "100.100.100.200") is Rule.METADATA


def test_metadata_in_disguise_is_metadata() -> None:
    for disguised in ("::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1"):
        assert refusal(Policy.of(False, ("::/0",)), "x", disguised) is Rule.METADATA


def test_allow_private_urls_allows_everything() -> None:
    policy = Policy.of(True, ())
    assert not policy.checks
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00:ec2::254"):
        assert refusal(policy, "x", address) is None


def test_messages_say_which_rule_and_which_flag() -> None:
    private = Policy().refusal("x", ipaddress.ip_address("10.1.2.3"))
    assert private is not None and private.rule == "private"
    assert "--egress-allow" in private.reason() and "--allow-private-urls" in private.reason()
    assert "10.1.2.3" in private.reason()
    metadata = Policy.of(False, ("169.254.0.0/16",)).refusal(
        "x", ipaddress.ip_address("169.254.169.254")
    )
    assert metadata is not None and metadata.rule == "metadata"
    assert "--egress-allow 169.254.169.254" in metadata.reason()
    assert "named exactly" in metadata.reason() or "Name it exactly" in metadata.reason()


def test_rule_values_are_the_fixed_label_set() -> None:
    assert {r.value for r in Rule} == {"private", "metadata", "proxy"}


@pytest.mark.parametrize(
    "entry,kind",
    [
        ("10.0.0.0/8", "network"),
        ("10.1.2.3", "network"),
        ("fd12::/48", "network"),
        ("ci.corp.example", "name"),
        ("*.corp.example", "suffix"),
        ("Build_Host.example.", "name"),
    ],
)
def test_entries(entry: str, kind: str) -> None:
    assert egress.parse_entry(entry)[0] == kind


@pytest.mark.parametrize(
    "entry,says",
    [
        ("10.0.0.1/8", "host bits"),
        ("10.0.0.0/33", "CIDR"),
        ("10.0.0", "CIDR"),
        ("*", "host name"),
        ("*.", "host name"),
        ("a b", "host name"),
        ("http://x", "host name"),
        ("a..b", "host name"),
        ("a*.b", "host name"),
    ],
)
def test_bad_entries(entry: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        egress.parse_entry(entry)


def test_bypass_like_no_proxy() -> None:
    bypass = Bypass.of(("internal.example", ".corp", "*.lab", "10.0.0.0/8", "::1"))
    assert bypass
    for host in ("internal.example", "a.internal.example", "x.corp", "x.y.lab", "10.9.9.9"):
        assert bypass.matches(host), host
    assert bypass.matches("[::1]")
    for host in ("notinternal.example", "corp.evil", "11.0.0.1", "example.com"):
        assert not bypass.matches(host), host
    assert Bypass.of(("*",)).matches("anything.example")
    assert not Bypass.of(())
    assert not Bypass.of(()).matches("example.com")
