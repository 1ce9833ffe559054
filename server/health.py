"""Whether the database answers, checked in the background: health checks then tell a load
balancer the truth at once, and a probe storm never reaches the database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between probes
BOUND = 2.0  # seconds a probe may take (at most --db-timeout) before health says NOT_SERVING


class DatabaseHealth:
    """Runs `probe(bound)` every `interval` seconds. Serving while the last probe answered
    within `bound`; not serving from the moment one fails or has not answered by then, until
    one answers again. `on_change(serving)` is called at each change."""

    def __init__(
        self,
        probe: Callable[[float], Awaitable[None]],
        on_change: Callable[[bool], Awaitable[None]],
        bound: float = BOUND,
        interval: float = INTERVAL,
    ) -> None:
        self._probe = probe
        self._on_change = on_change
        self._bound = bound
        self._interval = interval
        self.serving = True
        self.last_answer: float | None = None  # Unix time of the last probe answered

    async def run(self) -> None:
        probing: asyncio.Future[None] | None = None
        while True:
            # A probe still stuck from a previous round (an unreachable host) is waited for
            # again rather than joined by another one queued behind it.
            if probing is None:
                probing = asyncio.ensure_future(self._probe(self._bound))
            done, _ = await asyncio.wait({probing}, timeout=self._bound)
            problem = f"no answer within {self._bound:g} s"
            if done:
                error = probing.exception()
                probing = None
                if error is None:
                    self.last_answer = time.time()
                    problem = ""
                else:
                    problem = str(error) or type(error).__name__
            await self._set(not problem, problem)
            await asyncio.sleep(self._interval)

    async def _set(self, serving: bool, problem: str) -> None:
        if serving == self.serving:
            return
        self.serving = serving
        if serving:
            log.warning("the database answers again: health is SERVING")
        else:
            log.warning("the database does not answer (%s): health is NOT_SERVING", problem)
        await self._on_change(serving)
