"""The delivery engine's pure policy, in-process: reading Retry-After, the retry decision,
the signature, and the sender's promise never to raise. tests/test_delivery.py proves the
same promises end to end against a server process."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web

from mlflow_webhooks.server import egress
from mlflow_webhooks.server.delivery import retry_after
from mlflow_webhooks.server.delivery.dispatcher import JITTER, RETRY_AFTER_CAP, decide
from mlflow_webhooks.server.delivery.retry_after import parse_retry_after
from mlflow_webhooks.server.delivery.sender import Attempt, Sender, headers
from mlflow_webhooks.server.delivery.settings import DeliverySettings
from mlflow_webhooks.server.delivery.signing import Secrets, signature
from mlflow_webhooks.server.store import DeliveryStatus, Outgoing

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


# -- Retry-After ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0000000030", 30.0),
        (str(retry_after.MAX_SECONDS), float(retry_after.MAX_SECONDS)),
        # HTTP dates, in the three forms RFC 9110 allows.
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),
        ("Thursday, 01-Jan-26 00:02:00 GMT", 120.0),
        ("Thu Jan  1 00:02:00 2026", 120.0),
        # A date in the past means now.
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_read(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "²",  # isdigit() says yes, float() says no: this one killed the delivery task
        "٣",  # an Arabic-Indic 3: float() takes it, HTTP does not
        "-5",
        "+5",
        "1.5",
        "1e3",
        "1e999",
        "inf",
        "nan",
        "0x10",
        "9" * 40,
        "9" * 5000,  # beyond the digits int() converts
        str(retry_after.MAX_SECONDS + 1),
        "soon",
        "Tue, 99 Foo 2026 99:99:99 GMT",
        "Mon, 01 Jan 10000 00:00:00 GMT",
        "Mon, 01 Jan 2026 00:00:00 +9999",
        "Fri, 31 Dec 9999 23:59:59 GMT",  # years away: garbage, not a request
        "\x00",
    ],
)
def test_retry_after_garbage_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


# -- the retry decision ---------------------------------------------------------------------

SCHEDULE = (5.0, 300.0)
NOW_MS = 1_767_225_600_000


def outgoing(attempts_before: int = 0) -> Outgoing:
    return Outgoing(
        delivery_id="d-1",
        webhook_id="w-1",
        attempt_count=attempts_before,
        event=(1, 1),
        data="{}",
        occurred_at="2026-01-01T00:00:00+00:00",
        payload="{}",
        url="https://example.com/hook",
        webhook_active=True,
    )


def answered(status: int | None, retryable: bool = False, retry_after: float | None = None):
    return Attempt(
        sent_at_ms=NOW_MS,
        duration_ms=12,
        status=status,
        error=None if status and status < 300 else "failed",
        retryable=retryable,
        retry_after=retry_after,
    )


def delay_ms(outcome) -> int:
    return outcome.next_attempt_timestamp - NOW_MS


def test_success_ends_the_delivery() -> None:
    outcome = decide(outgoing(1), answered(204), SCHEDULE, NOW_MS)
    assert outcome.status == DeliveryStatus.SUCCEEDED
    assert outcome.next_attempt_timestamp is None
    assert outcome.attempt.number == 2
    assert outcome.attempt.response_status == 204


def test_retryable_failure_waits_its_scheduled_delay_with_jitter() -> None:
    for attempts_before, scheduled in [(0, 5.0), (1, 300.0)]:
        outcome = decide(outgoing(attempts_before), answered(503, True), SCHEDULE, NOW_MS)
        assert outcome.status == DeliveryStatus.PENDING
        assert outcome.attempt.number == attempts_before + 1
        low, high = scheduled * (1 - JITTER) * 1000, scheduled * (1 + JITTER) * 1000
        assert low <= delay_ms(outcome) <= high


def test_schedule_exhausted_fails() -> None:
    outcome = decide(outgoing(len(SCHEDULE)), answered(503, True), SCHEDULE, NOW_MS)
    assert outcome.status == DeliveryStatus.FAILED
    assert outcome.attempt.number == len(SCHEDULE) + 1


def test_final_failure_is_not_retried() -> None:
    outcome = decide(outgoing(), answered(400), SCHEDULE, NOW_MS)
    assert (outcome.status, outcome.webhook_to_disable) == (DeliveryStatus.FAILED, None)


def test_gone_disables_the_webhook() -> None:
    outcome = decide(outgoing(), answered(410), SCHEDULE, NOW_MS)
    assert (outcome.status, outcome.webhook_to_disable) == (DeliveryStatus.FAILED, "w-1")


def test_retry_after_lengthens_the_wait_up_to_the_cap() -> None:
    longer = decide(outgoing(), answered(429, True, retry_after=60), SCHEDULE, NOW_MS)
    assert delay_ms(longer) == 60_000
    capped = decide(outgoing(), answered(429, True, retry_after=10**6), SCHEDULE, NOW_MS)
    assert delay_ms(capped) == RETRY_AFTER_CAP * 1000
    # A shorter Retry-After does not bring the scheduled retry forward.
    shorter = decide(outgoing(), answered(429, True, retry_after=0), SCHEDULE, NOW_MS)
    assert delay_ms(shorter) >= SCHEDULE[0] * (1 - JITTER) * 1000


def test_no_schedule_means_one_attempt() -> None:
    outcome = decide(outgoing(), answered(503, True), (), NOW_MS)
    assert outcome.status == DeliveryStatus.FAILED


def test_an_ordered_delivery_that_ends_passes_its_webhooks_turn_and_a_retry_keeps_it() -> None:
    ordered = replace(outgoing(), settings=DeliverySettings(ordered=True))
    for attempt, schedule in [(answered(200), SCHEDULE), (answered(400), SCHEDULE)]:
        assert decide(ordered, attempt, schedule, NOW_MS).passes_turn == "w-1"
    assert decide(ordered, answered(503, True), (), NOW_MS).passes_turn == "w-1"  # for good
    assert decide(ordered, answered(503, True), SCHEDULE, NOW_MS).passes_turn is None
    assert decide(outgoing(), answered(200), SCHEDULE, NOW_MS).passes_turn is None


# -- signatures -----------------------------------------------------------------------------


def test_signature_is_mlflows_hmac() -> None:
    body = b'{"entity": "model_version"}'
    expected = hmac.new(b"s3cret", b"d-1.1767225600." + body, hashlib.sha256).digest()
    assert (
        signature("s3cret", "d-1", 1767225600, body) == "v1," + base64.b64encode(expected).decode()
    )


def test_signature_known_answer() -> None:
    # Written down once: a change here would break every receiver verifying signatures.
    expected = "v1,1jKe9kz4iVDTq1exRDSBBquDHSuAdqPcHUtBKE1LmKk="
    assert signature("whsec", "abc", 1700000000, b"{}") == expected


def test_signature_secret_is_utf8() -> None:
    signed = hmac.new("sécret".encode(), b"d.1.{}", hashlib.sha256).digest()
    assert signature("sécret", "d", 1, b"{}") == "v1," + base64.b64encode(signed).decode()


def test_headers_sign_only_with_a_secret() -> None:
    unsigned = headers("d-1", 1000, b"{}", Secrets())
    assert "X-MLflow-Signature" not in unsigned and "webhook-signature" not in unsigned
    signed = headers("d-1", 1000, b"{}", Secrets("s"))
    assert signed["X-MLflow-Timestamp"] == signed["webhook-timestamp"] == "1"
    assert (
        signed["X-MLflow-Signature"]
        == signed["webhook-signature"]
        == signature("s", "d-1", 1, b"{}")
    )
    assert signed["webhook-id"] == signed["X-MLflow-Delivery-Id"] == "d-1"


# -- the sender never raises ----------------------------------------------------------------


@pytest.fixture
async def receiver_url() -> AsyncIterator[str]:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    sender = Sender(timeout=5, policy=egress.Policy(allow_private=True))
    await sender.start()
    yield sender
    await sender.close()


async def test_send_succeeds(sender: Sender, receiver_url: str) -> None:
    attempt = await sender.send(f"{receiver_url}/hook", Secrets("s"), "d-1", b"{}")
    assert attempt.succeeded and attempt.body == "ok"


async def test_an_unexpected_error_is_a_failed_attempt(
    sender: Sender, receiver_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A body that is not bytes breaks the signing step: a bug, not a network failure.
    attempt = await sender.send(f"{receiver_url}/SEKRET?token=SEKRET", Secrets("s"), "d-1", None)  # type: ignore[arg-type]
    assert not attempt.succeeded
    assert attempt.retryable
    assert attempt.error and "internal error while sending (TypeError)" in attempt.error
    assert "SEKRET" not in attempt.error
    assert "unexpected TypeError sending delivery d-1 to 127.0.0.1" in caplog.text
    assert "SEKRET" not in caplog.text
