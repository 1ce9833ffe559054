"""Adaptive concurrency per receiver: how many deliveries to one webhook may be in flight,
by slow start, then additive increase and multiplicative decrease (AIMD), as TCP paces a
connection.

A new webhook's window is SLOW_START (its maximum, if that is smaller): nothing is known yet
of its receiver. Until the first overload each fast success (a 2xx, which by definition came
within the timeout) adds a whole 1, so a window's worth of them doubles it: at the default
maximum, a receiver that keeps answering well is sent 4 at once, then 8, 16 and 32, about one
step per round trip. Only successes that tried the window count, as a window that is not used
is not tried: those of attempts on the wire while it was full (that filled it, or were still
out when a later one did). It never goes below 1 nor above the maximum.

An overload signal (429, 503, a timeout) ends the slow start, for as long as the Pacer keeps
the window, and halves the window, once per round: the other answers to attempts sent under
the old window say nothing new. From then on each fast success adds 1/window, so a window's
worth of them adds one. Other failures (a 500, a refused connection) say nothing about load
and change nothing.

It also remembers the level that overloaded the receiver (the attempts on the wire when the
overloaded one went out, less one): the window grows back to that ceiling and stays there.
Only after a run of fast successes at it does it try one more (a probe). A probe that
overloads the receiver again doubles the run the next one waits for; an overload below the
ceiling (the receiver got slower) starts the runs short again. So a receiver of fixed
capacity sees it exceeded ever more rarely, and the window settles below it.

Pure, and per process: the dispatcher keeps a Pacer, which feeds each webhook's Window every
attempt's result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

SLOW_START = 4  # a new webhook's window, before any answer from its receiver
DECREASE = 0.5  # the window is multiplied by this on an overload
FIRST_PROBE = 16  # fast successes at the ceiling before the first probe above it
MAX_PROBE = 1024  # the longest run between probes
OVERLOAD_STATUSES = frozenset({429, 503})


class Signal(Enum):
    FAST = "fast"  # 2xx within the timeout
    OVERLOAD = "overload"  # 429, 503 or a timeout
    NEUTRAL = "neutral"  # anything else


def signal_of(status: int | None, timed_out: bool) -> Signal:
    if timed_out or status in OVERLOAD_STATUSES:
        return Signal.OVERLOAD
    if status is not None and 200 <= status < 300:
        return Signal.FAST
    return Signal.NEUTRAL


@dataclass(frozen=True)
class Window:
    size: float  # attempts allowed in flight; its whole part counts
    # The highest level known not to overload; None: no overload yet, so in slow start.
    ceiling: int | None = None
    probe_after: int = FIRST_PROBE  # fast successes at the ceiling before a probe
    streak: int = 0  # fast successes at the ceiling so far
    epoch: int = 0  # decreases so far

    @classmethod
    def new(cls, maximum: int) -> Window:
        """A window for a receiver nothing is known of."""
        return cls(float(min(SLOW_START, maximum)))

    def allowed(self, maximum: int) -> int:
        return max(1, min(int(self.size), maximum))


@dataclass(frozen=True)
class Sent:
    """What the window was when an attempt went out."""

    position: int  # the webhook's attempts on the wire, this one included
    epoch: int
    full: bool  # it filled the window
    fills: int = 0  # how often the webhook's window had been filled, this one's included
    # Set on its answer: the window was filled by a later attempt while this one was out.
    # Only when it or a later one filled the window does its success say it can grow.
    filled_later: bool = False


def after(window: Window, signal: Signal, sent: Sent, maximum: int) -> Window:
    """The window after one attempt's answer."""
    if signal is Signal.OVERLOAD:
        level = max(1, sent.position - 1)
        ceiling = level if window.ceiling is None else min(window.ceiling, level)
        if sent.epoch != window.epoch:
            # Sent before the last decrease, which already answered this round.
            return replace(window, size=max(1.0, min(window.size, ceiling)), ceiling=ceiling)
        probing = window.ceiling is None or sent.position >= window.ceiling
        return Window(
            size=max(1.0, min(window.size * DECREASE, ceiling)),
            ceiling=ceiling,
            probe_after=min(window.probe_after * 2, MAX_PROBE) if probing else FIRST_PROBE,
            epoch=window.epoch + 1,
        )
    # As in TCP's cwnd-limited test, it is enough that the window was filled while the
    # attempt was out: attempts claimed together go out one by one, and only the last fills
    # it, so counting that one alone would grow the window (and run up to a probe) by about
    # one answer per round trip, not one per answer: slow start would add a slot per round
    # instead of doubling, and additive increase a slot per window's worth of rounds.
    tried = sent.full or sent.filled_later
    if signal is Signal.NEUTRAL or not tried:
        # A success with slots to spare says nothing of a larger window (without this, a
        # webhook with little traffic would grow a window it never tried).
        return window
    top = maximum if window.ceiling is None else min(window.ceiling, maximum)
    if window.size < top:
        # Slow start adds a slot per success, so a window's worth doubles it; after it, one.
        step = 1.0 if window.ceiling is None else 1 / int(window.size)
        return replace(window, size=min(window.size + step, top))
    if window.ceiling is None or window.ceiling >= maximum:
        return window
    if window.streak + 1 < window.probe_after:
        return replace(window, streak=window.streak + 1)
    return replace(window, ceiling=window.ceiling + 1, streak=0)


@dataclass
class _State:
    window: Window
    maximum: int  # the webhook's, as its latest claimed delivery carried it
    on_wire: int = 0
    last_used: float = 0.0
    fills: int = 0  # attempts that filled the window


class Pacer:
    """The windows of the webhooks this process sends to. A webhook's window is forgotten
    when it is deleted, and once nothing of it has been on the wire for IDLE seconds: a
    receiver's capacity then is anyone's guess, and it starts small again (slow start)."""

    IDLE = 600.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}

    def _state(self, webhook_id: str, maximum: int) -> _State:
        state = self._states.get(webhook_id)
        if state is None:
            state = self._states[webhook_id] = _State(Window.new(maximum), maximum)
        state.maximum = maximum
        return state

    def allowed(self, webhook_id: str, maximum: int) -> int:
        """Attempts the webhook may have in flight now."""
        state = self._states.get(webhook_id)
        window = Window.new(maximum) if state is None else state.window
        return window.allowed(maximum)

    def sending(self, webhook_id: str, maximum: int) -> Sent:
        state = self._state(webhook_id, maximum)
        state.on_wire += 1
        state.last_used = self._clock()
        full = state.on_wire >= state.window.allowed(maximum)
        state.fills += int(full)
        return Sent(state.on_wire, state.window.epoch, full, state.fills)

    def answered(self, webhook_id: str, sent: Sent, signal: Signal, maximum: int) -> None:
        state = self._states.get(webhook_id)
        if state is None:  # forgotten (deleted) while this attempt was on the wire
            return
        state.on_wire -= 1
        state.last_used = self._clock()
        state.maximum = maximum
        sent = replace(sent, filled_later=state.fills > sent.fills)
        state.window = after(state.window, signal, sent, maximum)

    def forget(self, webhook_id: str) -> None:
        self._states.pop(webhook_id, None)

    def windows(self) -> list[tuple[str, int, int]]:
        """(webhook id, attempts allowed in flight, attempts on the wire) of each webhook
        sent to lately, after forgetting the idle ones."""
        idle = self._clock() - self.IDLE
        for webhook_id, state in list(self._states.items()):
            if not state.on_wire and state.last_used < idle:
                del self._states[webhook_id]
        return [
            (webhook_id, state.window.allowed(state.maximum), state.on_wire)
            for webhook_id, state in sorted(self._states.items())
        ]
