"""Adaptive concurrency, in-process: slow start and the AIMD rule one answer at a time, the
Pacer's bookkeeping, and a simulated receiver of fixed capacity that the window settles
below."""

from __future__ import annotations

import itertools
import random

import pytest

from mlflow_webhooks.server.delivery import aimd
from mlflow_webhooks.server.delivery.aimd import (
    FIRST_PROBE,
    SLOW_START,
    Pacer,
    Sent,
    Signal,
    Window,
    after,
)

FAST, OVERLOAD, NEUTRAL = Signal.FAST, Signal.OVERLOAD, Signal.NEUTRAL


@pytest.mark.parametrize(
    ("status", "timed_out", "signal"),
    [
        (200, False, FAST),
        (204, False, FAST),
        (429, False, OVERLOAD),
        (503, False, OVERLOAD),
        (None, True, OVERLOAD),
        (500, False, NEUTRAL),  # a failure, but not a sign of load
        (502, False, NEUTRAL),
        (404, False, NEUTRAL),
        (None, False, NEUTRAL),  # refused connection, DNS, ...
    ],
)
def test_signal_of(status: int | None, timed_out: bool, signal: Signal) -> None:
    assert aimd.signal_of(status, timed_out) is signal


def full_round(window: Window, maximum: int) -> Window:
    """Fast answers to a window's worth of attempts that each filled it (as from a sender
    that refills every slot as soon as it frees)."""
    for position in range(1, window.allowed(maximum) + 1):
        window = after(window, FAST, Sent(position, window.epoch, full=True), maximum)
    return window


def test_a_new_window_starts_small() -> None:
    assert SLOW_START == 4
    assert Window.new(32) == Window(4.0) and Window.new(32).allowed(32) == 4
    assert Pacer().allowed("w", 32) == SLOW_START  # never sent to: not its maximum


@pytest.mark.parametrize("maximum", [1, 2, 3, 4])
def test_a_small_maximum_is_the_start(maximum: int) -> None:
    assert Window.new(maximum).allowed(maximum) == maximum
    assert Pacer().allowed("w", maximum) == maximum
    assert full_round(Window.new(maximum), maximum) == Window(float(maximum))


@pytest.mark.parametrize(
    ("maximum", "sizes"), [(32, [8, 16, 32, 32]), (20, [8, 16, 20, 20]), (6, [6, 6])]
)
def test_slow_start_doubles_each_full_round_up_to_the_maximum(
    maximum: int, sizes: list[int]
) -> None:
    """Each fast success of an attempt that filled the window adds a whole slot."""
    window, grown = Window.new(maximum), []
    for _ in sizes:
        window = full_round(window, maximum)
        grown.append(window.size)
    assert grown == sizes
    assert window.ceiling is None and window.epoch == 0  # no overload: still in slow start


def test_slow_start_ends_at_the_first_overload() -> None:
    """From 16 the receiver refuses the sixteenth: the window halves to 8, learns its
    ceiling (15), and from then on grows by one slot per window's worth of fast answers, not
    by one per answer."""
    window = full_round(full_round(Window.new(32), 32), 32)
    assert window.size == 16.0
    window = after(window, OVERLOAD, Sent(16, 0, full=True), 32)
    assert (window.size, window.ceiling, window.epoch) == (8.0, 15, 1)
    window = full_round(window, 32)
    assert window.size == pytest.approx(9.0)
    # A success on the wire while the window was full, which a later attempt filled, counts
    # as in slow start, but for 1/window.
    later = Sent(3, 1, full=False, filled_later=True)
    assert after(window, FAST, later, 32).size == pytest.approx(9.0 + 1 / 9)


def test_a_window_at_its_maximum_stays_there() -> None:
    window = Window(8.0)
    for _ in range(100):
        window = after(window, FAST, Sent(8, 0, full=True), 8)
    assert window == Window(8.0)
    assert window.allowed(8) == 8


def test_an_overload_halves_the_window_once_per_round() -> None:
    window = after(Window(8.0), OVERLOAD, Sent(8, 0, full=True), 8)
    assert window.size == 4.0 and window.epoch == 1
    # Answers to attempts sent under the old window (epoch 0) do not halve it again.
    for position in (5, 6, 7):
        window = after(window, OVERLOAD, Sent(position, 0, full=True), 8)
    assert window.size == 4.0 and window.epoch == 1
    # One sent under the new window does.
    window = after(window, OVERLOAD, Sent(4, 1, full=True), 8)
    assert window.size == 2.0 and window.epoch == 2


def test_the_window_never_goes_below_one() -> None:
    window = Window(8.0)
    for epoch in range(10):
        window = after(window, OVERLOAD, Sent(1, epoch, full=True), 8)
    assert window.size == 1.0 and window.allowed(8) == 1
    assert Window(0.5).allowed(8) == 1


def test_the_ceiling_is_the_level_below_the_overload() -> None:
    """Eight sent at once to a receiver taking four: the fifth to eighth are refused, in
    whatever order their answers come; the window drops to four, not below."""
    window = Window(8.0)
    for position in (7, 5, 8, 6):
        window = after(window, OVERLOAD, Sent(position, 0, full=True), 8)
    assert window.ceiling == 4 and window.size == 4.0 and window.epoch == 1


@pytest.mark.parametrize("filled", ["itself", "later"])
def test_additive_increase_up_to_the_ceiling_then_probes(filled: str) -> None:
    """The same whether the attempt filled the window or was on the wire when a later one
    did (as the dispatcher sends a claim's attempts, one by one)."""

    def sent(position: int) -> Sent:
        if filled == "itself":
            return Sent(position, 0, full=True)
        return Sent(position - 1, 0, full=False, filled_later=True)

    window = Window(2.0, ceiling=4, probe_after=3)
    sizes = []
    for _ in range(5):
        window = after(window, FAST, sent(2), 8)
        sizes.append(window.size)
    # +1/2 twice, then +1/3 three times: one slot per window's worth of fast answers.
    assert sizes[:2] == [2.5, 3.0]
    assert sizes[4] == pytest.approx(4.0) and window.ceiling == 4
    for _ in range(2):
        window = after(window, FAST, sent(4), 8)
    assert window.ceiling == 4 and window.streak == 2
    window = after(window, FAST, sent(4), 8)  # the third at the ceiling
    assert window.ceiling == 5 and window.streak == 0


def test_a_failed_probe_doubles_the_wait_for_the_next() -> None:
    window = Window(5.0, ceiling=5, probe_after=32, epoch=3)
    window = after(window, OVERLOAD, Sent(5, 3, full=True), 8)
    assert (window.ceiling, window.size, window.probe_after) == (4, 2.5, 64)


def test_an_overload_below_the_ceiling_shortens_the_wait_again() -> None:
    """The receiver got slower: the level it took before is no longer known good."""
    window = Window(4.0, ceiling=4, probe_after=256, epoch=3)
    window = after(window, OVERLOAD, Sent(2, 3, full=True), 8)
    assert (window.ceiling, window.size, window.probe_after) == (1, 1.0, FIRST_PROBE)


def test_the_wait_between_probes_is_bounded() -> None:
    window = Window(5.0, ceiling=5, probe_after=aimd.MAX_PROBE, epoch=1)
    window = after(window, OVERLOAD, Sent(5, 1, full=True), 8)
    assert window.probe_after == aimd.MAX_PROBE


@pytest.mark.parametrize("window", [Window(2.0, ceiling=6), Window.new(32)])
def test_successes_with_slots_to_spare_do_not_grow_the_window(window: Window) -> None:
    grown = window
    for _ in range(50):
        grown = after(grown, FAST, Sent(1, 0, full=False), 8)
    assert grown == window


def test_in_slow_start_a_success_on_the_wire_while_the_window_was_full_counts() -> None:
    """Attempts claimed together go out one by one; only the last fills the window, but
    all were on the wire when it was full: each success counts, so the window doubles."""
    pacer = Pacer()
    sent = [pacer.sending("w", 32) for _ in range(SLOW_START)]
    assert [s.full for s in sent] == [False] * (SLOW_START - 1) + [True]
    for one in sent:
        pacer.answered("w", one, FAST, 32)
    assert pacer.allowed("w", 32) == 2 * SLOW_START
    # A burst that never fills the window says nothing of it.
    for _ in range(3):
        burst = [pacer.sending("w", 32) for _ in range(2 * SLOW_START - 1)]
        for one in burst:
            pacer.answered("w", one, FAST, 32)
    assert pacer.allowed("w", 32) == 2 * SLOW_START


def claimed_round(pacer: Pacer, maximum: int = 32) -> None:
    """As the dispatcher sends a claim: the window's worth of attempts go out one by one
    (only the last fills it), then each is answered fast."""
    sent = [pacer.sending("w", maximum) for _ in range(pacer.allowed("w", maximum))]
    for one in sent:
        pacer.answered("w", one, FAST, maximum)


def test_after_slow_start_a_windows_worth_of_claimed_answers_adds_one() -> None:
    """After slow start too, every fast answer to an attempt on the wire while the window
    was full counts, not only the claim's last: the run of 32 fast answers at the ceiling
    before the first probe ends in the 11th claim of 3, and growing to the probed level at
    1/3 a success takes 3 answers more, within the 12th. Counting only the attempts that
    filled the window (one answer per claim) it took 35 claims."""
    pacer = Pacer()
    first = [pacer.sending("w", 32) for _ in range(SLOW_START)]
    for one in first[:-1]:
        pacer.answered("w", one, FAST, 32)
    pacer.answered("w", first[-1], OVERLOAD, 32)  # the fourth is refused
    assert pacer.allowed("w", 32) == 3  # the level below it; the next probe after 32
    claims = 0
    while pacer.allowed("w", 32) == 3:
        claimed_round(pacer)
        claims += 1
        assert claims < 100
    assert claims == 12
    assert pacer.windows() == [("w", 4, 0)]


def test_other_failures_change_nothing() -> None:
    window = Window(3.0, ceiling=4, streak=2, epoch=1)
    assert after(window, NEUTRAL, Sent(4, 1, full=True), 8) == window


def test_never_above_the_maximum_even_when_it_is_lowered() -> None:
    window = Window(8.0)
    assert window.allowed(2) == 2  # the webhook's maximum changed to 2
    window = after(window, FAST, Sent(2, 0, full=True), 2)
    assert window.allowed(2) == 2
    grown = Window(3.0, ceiling=8, epoch=1)
    for _ in range(20):
        grown = after(grown, FAST, Sent(3, 1, full=True), 4)
    assert grown.size == 4.0  # a raised maximum is reached additively, then held
    started = full_round(Window(3.0), 4)
    assert started.size == 4.0  # or, in slow start, by whole slots


def test_pacer_counts_the_wire_and_feeds_the_window() -> None:
    pacer = Pacer()
    assert pacer.allowed("w", 8) == 4  # never sent to: slow start's
    sent = [pacer.sending("w", 8) for _ in range(4)]
    assert [s.position for s in sent] == list(range(1, 5))
    assert [s.full for s in sent] == [False] * 3 + [True]
    assert pacer.windows() == [("w", 4, 4)]
    pacer.answered("w", sent[3], OVERLOAD, 8)
    assert pacer.allowed("w", 8) == 2  # halved (the ceiling, three, is higher)
    assert pacer.windows() == [("w", 2, 3)]


def test_pacer_forgets_deleted_and_idle_webhooks() -> None:
    now = [0.0]
    pacer = Pacer(clock=lambda: now[0])
    kept, idle, deleted = (pacer.sending(hook, 32) for hook in ("kept", "idle", "deleted"))
    pacer.answered("idle", idle, OVERLOAD, 32)
    assert pacer.allowed("idle", 32) == 1  # its ceiling: it was refused its first
    pacer.forget("deleted")
    pacer.answered("deleted", deleted, FAST, 32)  # its answer after the delete is dropped
    assert [w[0] for w in pacer.windows()] == ["idle", "kept"]
    now[0] = Pacer.IDLE + 1
    # "kept" still has an attempt on the wire; "idle" has had none for IDLE seconds.
    assert pacer.windows() == [("kept", SLOW_START, 1)]
    assert pacer.allowed("idle", 32) == SLOW_START  # starts over, in slow start
    again = pacer.sending("idle", 32)
    assert pacer.windows()[0] == ("idle", SLOW_START, 1)
    pacer.answered("idle", again, FAST, 32)
    pacer.answered("kept", kept, FAST, 32)


def simulate(capacity: int, maximum: int, deliveries: int, seed: int) -> list[int]:
    """A receiver that refuses (429) every request beyond `capacity` in flight, fed by a
    sender that keeps its window full and reads answers in random order; answers the
    ordinal of every send the receiver refused. A refused delivery is sent again."""
    rng = random.Random(seed)
    pacer = Pacer()
    on_wire: list[tuple[Sent, Signal]] = []
    refused: list[int] = []
    sends = delivered = 0
    while delivered < deliveries:
        while len(on_wire) < pacer.allowed("w", maximum):
            sent = pacer.sending("w", maximum)
            sends += 1
            signal = OVERLOAD if sent.position > capacity else FAST
            if signal is OVERLOAD:
                refused.append(sends)
            on_wire.append((sent, signal))
        sent, signal = on_wire.pop(rng.randrange(len(on_wire)))
        delivered += signal is FAST
        pacer.answered("w", sent, signal, maximum)
    return refused


@pytest.mark.parametrize("seed", range(5))
def test_the_window_settles_below_a_fixed_capacity(seed: int) -> None:
    """After the first burst, refusals come only from probes: a few refusals each (those
    sent before the first refusal was read), each run between them about twice the last,
    up to MAX_PROBE. Over 4,000 deliveries: a few dozen refusals, ever further apart."""
    refused = simulate(capacity=4, maximum=8, deliveries=4000, seed=seed)
    assert len(refused) <= 40
    episodes = [n for i, n in enumerate(refused) if i == 0 or n - refused[i - 1] > 20]
    gaps = [b - a for a, b in itertools.pairwise(episodes)]
    assert len(episodes) <= 10
    for before, gap in itertools.pairwise(gaps):
        assert gap >= min(1.5 * before, aimd.MAX_PROBE), gaps
