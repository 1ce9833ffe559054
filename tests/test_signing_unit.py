"""Which secret signs which header (server/delivery/signing.py), in-process: one secret, an
overlap window after a rotation, its end; and the rotation's input rules.
tests/test_rotation.py proves the same end to end, with MLflow's own verification code."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from mlflow_webhooks.server import validation
from mlflow_webhooks.server.delivery.signing import Secrets, signature, signature_headers
from mlflow_webhooks.server.errors import InvalidArgument

BODY = b'{"entity": "model_version", "action": "created"}'
NOW_MS = 1_767_225_600_000
TIMESTAMP = NOW_MS // 1000
UNTIL = NOW_MS + 60_000
ROTATED = Secrets("new", "old", UNTIL)


def headers_at(secrets: Secrets, now_ms: int) -> dict[str, str]:
    return signature_headers(secrets, "d-1", TIMESTAMP, BODY, now_ms)


def standard_verifies(secret: str, headers: dict[str, str], timestamp: int) -> bool:
    """A Standard Webhooks receiver holding `secret`."""
    verifier = StandardWebhook("whsec_" + base64.b64encode(secret.encode()).decode())
    sent = {"webhook-id": "d-1", "webhook-timestamp": str(timestamp), **headers}
    try:
        verifier.verify(BODY, sent)
    except WebhookVerificationError:
        return False
    return True


def test_no_secret_signs_nothing() -> None:
    assert headers_at(Secrets(), NOW_MS) == {}
    # A previous secret without a current one (signing turned off) signs nothing either.
    assert headers_at(Secrets(None, "old", UNTIL), NOW_MS) == {}


def test_one_secret_signs_both_headers_alike() -> None:
    want = signature("s", "d-1", TIMESTAMP, BODY)
    assert headers_at(Secrets("s"), NOW_MS) == {
        "X-MLflow-Signature": want,
        "webhook-signature": want,
    }


def test_during_the_window_standard_webhooks_carries_both_mlflow_the_old() -> None:
    new = signature("new", "d-1", TIMESTAMP, BODY)
    old = signature("old", "d-1", TIMESTAMP, BODY)
    for now in (NOW_MS, UNTIL - 1):
        assert headers_at(ROTATED, now) == {
            "webhook-signature": f"{new} {old}",
            "X-MLflow-Signature": old,
        }


def test_from_the_windows_end_only_the_new_secret_signs() -> None:
    new = signature("new", "d-1", TIMESTAMP, BODY)
    for now in (UNTIL, UNTIL + 1, UNTIL + 86_400_000):
        assert headers_at(ROTATED, now) == {"X-MLflow-Signature": new, "webhook-signature": new}
    assert ROTATED.previous_at(UNTIL - 1) == "old"
    assert ROTATED.previous_at(UNTIL) is None


def test_standard_webhooks_library_verifies_either_secret_in_the_window_only() -> None:
    # The library compares the signature of each "v1," entry of the space-separated list,
    # and refuses a timestamp far from its own clock: this one is now.
    now = int(time.time())
    during = signature_headers(ROTATED, "d-1", now, BODY, UNTIL - 1)
    assert standard_verifies("new", during, now) and standard_verifies("old", during, now)
    assert not standard_verifies("other", during, now)
    after = signature_headers(ROTATED, "d-1", now, BODY, UNTIL)
    assert standard_verifies("new", after, now) and not standard_verifies("old", after, now)


def test_secrets_never_show_in_repr() -> None:
    assert "old" not in repr(ROTATED) and "new" not in repr(ROTATED)


@pytest.mark.parametrize("seconds", [0, 1, 86_400, 604_800])
def test_overlap_within_bounds(seconds: int) -> None:
    assert validation.overlap_seconds(seconds) == seconds


@pytest.mark.parametrize("seconds", [-1, 604_801, 2**31 - 1])
def test_overlap_out_of_bounds_says_what_to_give(seconds: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validation.overlap_seconds(seconds)
    assert str(raised.value) == (
        f"overlap_seconds must be between 0 and 604800 (7 days), got {seconds}; "
        "leave it out for 86400 (24 hours)."
    )
