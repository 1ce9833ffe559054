"""The shim's browser guards as pure rules, in-process: which bodies are JSON and which Host
headers are answered. tests/test_security.py checks a real server."""

from __future__ import annotations

import pytest

from mlflow_webhooks.server.shim.guards import HostRule, host_name, is_json


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON ;charset=UTF-8"],
)
def test_json_content_types(content_type: str) -> None:
    assert is_json(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-patch+json",
        "text/json",
        "application/octet-stream",
    ],
)
def test_other_content_types(content_type: str | None) -> None:
    assert not is_json(content_type)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8080", "localhost"),
        ("localhost.", "localhost"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::1]:8080", "::1"),
        ("[0:0::1]:1", "::1"),
        ("hooks.example.com", "hooks.example.com"),
        ("::1", None),
        ("[::1", None),
        ("[::1]x", None),
        ("[nonsense]", None),
        ("", None),
        (":80", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


LOOPBACK = HostRule.of("127.0.0.1", ())


@pytest.mark.parametrize(
    "header",
    [
        None,
        "localhost",
        "localhost:1",
        "127.0.0.1",
        "127.255.0.9:80",
        "[::1]:8080",
        "[::ffff:127.0.0.1]",
    ],
)
def test_bound_to_loopback_answers_loopback_names(header: str | None) -> None:
    assert LOOPBACK.allows(header)


@pytest.mark.parametrize(
    "header",
    [
        "attacker.example",
        "localhost.attacker.example",
        "10.0.0.1",
        "0.0.0.0",
        "[::2]",
        "::1",
        "localhost:x",
        "",
    ],
)
def test_bound_to_loopback_refuses_other_names(header: str) -> None:
    assert not LOOPBACK.allows(header)


def test_allowed_hosts_extend_the_loopback_names() -> None:
    rule = HostRule.of("[::1]", ("hooks.internal", "*.corp.example"))
    assert rule.allows("hooks.internal:443") and rule.allows("HOOKS.INTERNAL")
    assert rule.allows("a.corp.example") and rule.allows("b.a.corp.example")
    assert rule.allows("localhost")
    assert not rule.allows("corp.example")
    assert not rule.allows("evil-corp.example")
    assert not rule.allows("hooks.internal.evil")


def test_any_name_when_bound_elsewhere_unless_names_are_given() -> None:
    assert HostRule.of("0.0.0.0", ()).any_host
    assert HostRule.of("hooks.example.com", ()).any_host
    assert HostRule.of("localhost", ("*",)).any_host
    bound_everywhere_with_names = HostRule.of("0.0.0.0", ("hooks.example.com",))
    assert bound_everywhere_with_names.allows("hooks.example.com")
    assert not bound_everywhere_with_names.allows("other.example.com")
