"""The server's periodic chores (retention, forgetting rotated-out secrets): each a loop run
as one task from start() until stop()."""

from __future__ import annotations

import asyncio
import contextlib


class Background:
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        raise NotImplementedError
