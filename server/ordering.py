"""Ordered delivery (a webhook's `ordered` setting): where a new delivery goes in its
webhook's line. Pure.

An ordered webhook's deliveries go one at a time, in publish order. Each is numbered on from
the webhook's last one (its sequence) by the publishing transaction, which takes the
webhook's row meanwhile, so the numbers follow the order publishes commit in. A delivery that
may not go yet waits its turn: PENDING with no next attempt, so no claim takes it. When the
one before it ends (it succeeded, or failed for good) the transaction that writes that result
gives the turn to the waiting delivery numbered next (Store._next_turn)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    sequence: int
    waits: bool  # for an earlier delivery of the webhook to end


def places(last: int, count: int, pending: bool) -> list[Place]:
    """Where `count` new deliveries of one ordered webhook go, in publish order, when its
    last delivery was numbered `last` and `pending` says whether any of its deliveries is
    still PENDING: numbered on from `last`; the first may go at once only when none is
    pending, and each of the others waits behind the one before it."""
    return [Place(last + 1 + i, waits=pending or i > 0) for i in range(count)]
