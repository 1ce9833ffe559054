"""server.validation on its own: every bad input CONTRACT section 4 names, with MLflow's
exact messages where MLflow's clients match on them, and the SSRF address rules."""

from __future__ import annotations

import ipaddress

import pytest

from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.server import egress, validation
from mlflow_webhooks.server.errors import Code, InvalidArgument

HTTPS = ("https",)
BOTH = ("http", "https")
OPEN = egress.Policy(allow_private=True)  # --allow-private-urls
STRICT = egress.Policy()


def message_of(excinfo: pytest.ExceptionInfo[InvalidArgument]) -> str:
    assert excinfo.value.code is Code.INVALID_ARGUMENT
    return excinfo.value.message


# -- name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "good",
    [
        "a",
        "7",
        "a" * 63,
        "my-hook",
        "my.hook",
        "my_hook",
        "a.b_c-d",
        "MyHook",
        "UPPER-CASE.9",
        "0-0",
    ],
)
def test_name_accepts(good: str) -> None:
    assert validation.name(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a" * 64,
        "-hook",
        "hook-",
        ".hook",
        "hook.",
        "_hook",
        "hook_",
        "has space",
        "slash/name",
        "ünïcode",
        "hook\n",
        # Case-insensitive Unicode matching folds these onto s and k: MLflow's rule is ASCII.
        "\u017fhook",
        "hoo\u212a",
        "\u0130d",
    ],
)
def test_name_refuses(bad: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.name(bad)
    text = message_of(e)
    assert repr(bad) in text
    # Says how to fix it.
    assert "1 to 63 characters" in text
    assert "letters, digits" in text


# -- description, secret ---------------------------------------------------------------


def test_description_limit() -> None:
    assert validation.description("d" * 1000) == "d" * 1000
    assert validation.description("") == ""
    with pytest.raises(InvalidArgument) as e:
        validation.description("d" * 1001)
    text = message_of(e)
    assert "1001" in text
    assert "1000" in text


def test_secret_limit() -> None:
    assert validation.secret("s" * 1000) == "s" * 1000
    with pytest.raises(InvalidArgument) as e:
        validation.secret("s" * 1001)
    text = message_of(e)
    assert "1001" in text
    assert "1000" in text
    # The message talks about the secret without repeating it.
    assert "s" * 20 not in text


# -- events ----------------------------------------------------------------------------

VALID_PAIRS = [
    (pb.REGISTERED_MODEL, pb.CREATED),
    (pb.MODEL_VERSION, pb.CREATED),
    (pb.MODEL_VERSION_TAG, pb.SET),
    (pb.MODEL_VERSION_TAG, pb.DELETED),
    (pb.MODEL_VERSION_ALIAS, pb.CREATED),
    (pb.MODEL_VERSION_ALIAS, pb.DELETED),
    (pb.PROMPT, pb.CREATED),
    (pb.PROMPT_VERSION, pb.CREATED),
    (pb.PROMPT_TAG, pb.SET),
    (pb.PROMPT_TAG, pb.DELETED),
    (pb.PROMPT_VERSION_TAG, pb.SET),
    (pb.PROMPT_VERSION_TAG, pb.DELETED),
    (pb.PROMPT_ALIAS, pb.CREATED),
    (pb.PROMPT_ALIAS, pb.DELETED),
    (pb.BUDGET_POLICY, pb.EXCEEDED),
]


@pytest.mark.parametrize("pair", VALID_PAIRS)
def test_every_valid_pair_accepted(pair: tuple[int, int]) -> None:
    assert validation.event(*pair) == pair


def test_exactly_the_contract_pairs_are_valid() -> None:
    every = [(e, a) for e in pb.WebhookEntity.values() for a in pb.WebhookAction.values()]
    accepted = []
    for pair in every:
        try:
            validation.event(*pair)
        except InvalidArgument:
            continue
        accepted.append(pair)
    assert sorted(accepted) == sorted(VALID_PAIRS)


def test_invalid_action_has_mlflow_message() -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.event(pb.REGISTERED_MODEL, pb.DELETED)
    assert message_of(e) == (
        "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']"
    )


def test_invalid_action_lists_every_valid_action() -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.event(pb.MODEL_VERSION_TAG, pb.CREATED)
    assert message_of(e) == (
        "Invalid action 'created' for entity 'model_version_tag'. "
        "Valid actions are: ['set', 'deleted']"
    )


def test_action_unspecified_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.event(pb.MODEL_VERSION, pb.ACTION_UNSPECIFIED)
    assert message_of(e) == (
        "Invalid action 'action_unspecified' for entity 'model_version'. "
        "Valid actions are: ['created']"
    )


def test_entity_unspecified_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.event(pb.ENTITY_UNSPECIFIED, pb.CREATED)
    text = message_of(e)
    assert "entity_unspecified" in text
    # Names what to use instead.
    assert "model_version" in text
    assert "registered_model" in text


def test_both_unspecified_refused() -> None:
    with pytest.raises(InvalidArgument):
        validation.event(pb.ENTITY_UNSPECIFIED, pb.ACTION_UNSPECIFIED)


def test_unknown_enum_numbers_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.event(99, pb.CREATED)
    assert "99" in message_of(e)
    with pytest.raises(InvalidArgument) as e:
        validation.event(pb.PROMPT, 77)
    assert "77" in message_of(e)


def test_events_cannot_be_empty() -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.event_list([])
    assert message_of(e) == "Webhook events cannot be empty"


def test_duplicate_events_collapse_in_order() -> None:
    pairs = [
        (pb.PROMPT, pb.CREATED),
        (pb.MODEL_VERSION, pb.CREATED),
        (pb.PROMPT, pb.CREATED),
        (pb.REGISTERED_MODEL, pb.CREATED),
        (pb.MODEL_VERSION, pb.CREATED),
    ]
    assert validation.event_list(pairs) == [
        (pb.PROMPT, pb.CREATED),
        (pb.MODEL_VERSION, pb.CREATED),
        (pb.REGISTERED_MODEL, pb.CREATED),
    ]


def test_event_list_refuses_one_bad_pair_among_good() -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.event_list([(pb.MODEL_VERSION, pb.CREATED), (pb.REGISTERED_MODEL, pb.SET)])
    assert message_of(e).startswith("Invalid action 'set' for entity 'registered_model'.")


# -- page size -------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "used"), [(0, 100), (1, 1), (100, 100), (1000, 1000)])
def test_page_size_accepts(given: int, used: int) -> None:
    assert validation.page_size(given) == used


@pytest.mark.parametrize("bad", [-1, 1001, -1000, 2**31 - 1])
def test_page_size_refuses(bad: int) -> None:
    with pytest.raises(InvalidArgument) as e:
        validation.page_size(bad)
    text = message_of(e)
    assert "max_results" in text
    assert "1000" in text
    assert str(bad) in text


# -- URL -------------------------------------------------------------------------------


async def test_url_whitespace_has_mlflow_message() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("   ", HTTPS, policy=OPEN)
    assert message_of(e) == "Webhook URL cannot be empty or just whitespace: '   '"


async def test_url_empty_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("", HTTPS, policy=OPEN)
    assert message_of(e) == "Webhook URL cannot be empty or just whitespace: ''"


async def test_url_scheme_has_mlflow_message() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("ftp://example.com/hook", HTTPS, policy=OPEN)
    assert message_of(e) == "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: https."


async def test_url_scheme_lists_every_allowed_scheme() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("ftp://example.com/hook", BOTH, policy=OPEN)
    assert message_of(e) == "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: http, https."


async def test_http_refused_when_only_https_allowed() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("http://example.com/hook", HTTPS, policy=OPEN)
    assert message_of(e) == "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."


async def test_url_without_scheme_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("example.com/hook", HTTPS, policy=OPEN)
    assert message_of(e).startswith("Invalid webhook URL scheme: ''")


async def test_unparseable_url_has_mlflow_prefix() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("http://[invalid", BOTH, policy=OPEN)
    assert message_of(e).startswith("Invalid webhook URL 'http://[invalid': ")


async def test_bad_port_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("https://example.com:99999/hook", HTTPS, policy=OPEN)
    assert message_of(e).startswith("Invalid webhook URL 'https://example.com:99999/hook': ")
    with pytest.raises(InvalidArgument):
        await validation.url("https://example.com:port/hook", HTTPS, policy=OPEN)


async def test_url_without_host_has_mlflow_message() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("https://", HTTPS, policy=OPEN)
    assert message_of(e) == "Webhook URL must include a hostname: 'https://'"


async def test_url_length_limit() -> None:
    base = "https://example.com/"
    at_limit = base + "a" * (500 - len(base))
    assert len(at_limit) == 500
    assert await validation.url(at_limit, HTTPS, policy=OPEN) == at_limit
    with pytest.raises(InvalidArgument) as e:
        await validation.url(at_limit + "a", HTTPS, policy=OPEN)
    text = message_of(e)
    assert "501" in text
    assert "500" in text


async def test_good_url_returned_unchanged() -> None:
    value = "https://hooks.example.com:8443/path?q=1#frag"
    assert await validation.url(value, HTTPS, policy=OPEN) == value


# -- SSRF ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456:789a::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2002:a00:1::1",
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",
        "::7f00:1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "2001:db8::1",
        "198.18.0.1",
        "192.0.2.1",
        "192.0.0.1",
        "0.0.0.1",
        # Site-local (deprecated, RFC 3879, but still routed inside some networks).
        "fec0::1",
    ],
)
def test_non_public_addresses_refused(address: str) -> None:
    assert not egress.is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        # 6to4 of a public address.
        "2002:808:808::",
    ],
)
def test_public_addresses_allowed(address: str) -> None:
    assert egress.is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/hook",
        "http://localhost/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://LOCALHOST/",
        # Other spellings of 127.0.0.1 that resolvers accept (aiohttp hands this one to the
        # resolver; the numeric ones below it refuses itself).
        "http://0x7f.1/",
        "http://[::ffff:7f00:1]/",
        "http://[fe80::1%25eth0]/",
    ],
)
async def test_url_refuses_private_hosts(url: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url(url, BOTH, policy=STRICT)
    text = message_of(e)
    if "169.254." in url or "fe80:" in url:
        assert "refused by the metadata rule" in text and "link-local" in text
    else:
        assert "refused by the private rule" in text and "non-public address" in text
    assert "--egress-allow" in text and "--allow-private-urls" in text


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(
    "url", ["http://2130706433/", "http://127.1/", "http://017700000001/", "http://8.8.8.08/"]
)
async def test_url_refuses_what_aiohttp_refuses_to_send_to(url: str, allow_private: bool) -> None:
    # The sender refuses a non-canonical IPv4 address on every send, so create refuses it.
    with pytest.raises(InvalidArgument) as e:
        await validation.url(url, BOTH, policy=egress.Policy(allow_private=allow_private))
    assert message_of(e).startswith(f"Invalid webhook URL {url!r}: ")
    assert "canonical IPv4 address" in message_of(e)


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # urlsplit's host is 8.8.8.8 (public); yarl, which sends, refuses the backslash.
        ("http://host\\@8.8.8.8/", "backslash"),
        ("https://example.com\\@8.8.8.8/hook", "backslash"),
        ("http://exa mple.com/", "not a valid host name"),
        ("http://ex%41mple.com/", "not a valid host name"),
        ("http://[::1x]/", "IPv6"),
    ],
)
async def test_url_is_read_by_the_parser_that_sends(
    url: str, reason: str, allow_private: bool
) -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url(url, BOTH, policy=egress.Policy(allow_private=allow_private))
    assert message_of(e).startswith(f"Invalid webhook URL {url!r}: ")
    assert reason in message_of(e)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("HTTP://User:pw@LOCALHOST:8080/a/../b?token=t#f", "localhost"),
        ("http://bücher.example/p", "xn--bcher-kva.example"),
        ("http://[::1]:80/x", "::1"),
        ("http://[invalid", ""),
    ],
)
def test_host_of_is_the_host_alone(url: str, host: str) -> None:
    assert validation.host_of(url) == host


async def test_url_refuses_unresolvable_host() -> None:
    with pytest.raises(InvalidArgument) as e:
        await validation.url("https://no-such-host.invalid/hook", HTTPS, policy=STRICT)
    text = message_of(e)
    assert "'no-such-host.invalid'" in text
    assert "does not resolve" in text
    # Says how to run where there is no outbound DNS (a laptop offline, a local receiver).
    assert "--allow-private-urls" in text


async def test_url_accepts_public_literal_without_dns() -> None:
    assert await validation.url("https://8.8.8.8/hook", HTTPS, policy=STRICT)
    assert await validation.url("https://[2606:4700:4700::1111]/h", HTTPS, policy=STRICT)


async def test_allow_private_needs_no_dns() -> None:
    # A .invalid name never resolves: accepted only because no lookup is made.
    url = "https://no-such-host.invalid/hook"
    assert await validation.url(url, HTTPS, policy=OPEN) == url
    assert await validation.url("http://127.0.0.1:1/x", BOTH, policy=OPEN)
    assert await validation.url("http://localhost/x", BOTH, policy=OPEN)


async def test_resolve_literal_and_localhost() -> None:
    assert await validation.resolve("10.0.0.1") == [ipaddress.ip_address("10.0.0.1")]
    assert await validation.resolve("::1") == [ipaddress.ip_address("::1")]
    addresses = await validation.resolve("localhost")
    assert addresses
    assert all(ip.is_loopback for ip in addresses)
    assert len(addresses) == len(set(addresses))
