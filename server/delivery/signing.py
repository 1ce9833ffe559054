"""How a delivery is signed: MLflow's HMAC, and which secret signs which header while a
rotated-out secret is in its overlap window (docs/delivery.md, "Rotating the secret")."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Secrets:
    """A webhook's signing secrets: the current one (None: deliveries are not signed), and the
    one a rotation replaced, which signs too until `previous_until` (Unix ms)."""

    current: str | None = field(default=None, repr=False)
    previous: str | None = field(default=None, repr=False)
    previous_until: int | None = None

    def previous_at(self, now_ms: int) -> str | None:
        """The previous secret while its window lasts at `now_ms`, else None. Past the window
        it signs nothing, whether or not it has been removed from the database yet."""
        if self.current is None or self.previous is None or self.previous_until is None:
            return None
        return self.previous if now_ms < self.previous_until else None


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secrets: Secrets, delivery_id: str, timestamp: int, body: bytes, now_ms: int
) -> dict[str, str]:
    """The signature headers of one attempt sent at `now_ms` with `timestamp` (Unix s) in its
    headers; none when the webhook has no secret.

    `webhook-signature` (Standard Webhooks) carries the current secret's signature and, during
    an overlap window, the previous secret's after it, space-separated: a receiver verifying
    with either secret finds its own. `X-MLflow-Signature` can carry only one: MLflow's recipe
    compares everything after "v1," with the one HMAC it computes, and the two secrets' HMACs
    differ, so no value verifies under both. During the window it is the previous secret's,
    so a receiver nobody has touched since the rotation keeps verifying; after it, the
    current secret's."""
    if secrets.current is None:
        return {}
    current = signature(secrets.current, delivery_id, timestamp, body)
    previous = secrets.previous_at(now_ms)
    if previous is None:
        return {"X-MLflow-Signature": current, "webhook-signature": current}
    old = signature(previous, delivery_id, timestamp, body)
    return {"X-MLflow-Signature": old, "webhook-signature": f"{current} {old}"}
