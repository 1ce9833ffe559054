"""server.health.DatabaseHealth in-process, with a probe the test controls: when health turns
NOT_SERVING and back, and that a stuck probe is never joined by a second one."""

from __future__ import annotations

import asyncio
import contextlib

from mlflow_webhooks.server.health import DatabaseHealth


class Probe:
    """Answers as the test says: `ok`, a raised error, or not at all until `release`d."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()

    async def __call__(self, bound: float) -> None:
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.mode == "fail":
                raise RuntimeError("database is locked")
            if self.mode == "hang":
                await self.release.wait()
        finally:
            self.running -= 1


async def test_not_serving_while_the_probe_fails_or_hangs_and_back() -> None:
    probe = Probe()
    changes: asyncio.Queue[bool] = asyncio.Queue()

    async def on_change(serving: bool) -> None:
        await changes.put(serving)

    health = DatabaseHealth(probe, on_change, bound=0.05, interval=0.01)
    task = asyncio.create_task(health.run())
    try:
        async with asyncio.timeout(10):
            while health.last_answer is None:
                await asyncio.sleep(0.01)
            assert health.serving and changes.empty()

            probe.mode = "fail"
            assert await changes.get() is False
            assert not health.serving
            probe.mode = "ok"
            assert await changes.get() is True

            probe.mode = "hang"
            assert await changes.get() is False
            hung_at = probe.calls
            # Several bounds pass (absence cannot be awaited): the stuck probe is waited for
            # again each round, never joined by a second one.
            await asyncio.sleep(0.3)
            assert probe.calls == hung_at and probe.most_at_once == 1
            assert not health.serving
            before = health.last_answer
            probe.mode = "ok"
            probe.release.set()
            assert await changes.get() is True
            assert health.last_answer is not None and before is not None
            assert health.last_answer >= before
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
