"""Group commit: callers that write at the same time share one transaction.

Each caller submits its item and waits; one writer task takes whatever is queued (at most
`max_items`), writes it in one call, and answers every caller with its own result only once
that call has returned, that is, once the transaction holding its item has committed. While
one write runs, new items queue up and go together in the next, so the number of
transactions follows the database's speed rather than the number of callers. Under
concurrency the writer also waits up to `max_wait` seconds for more items before it
writes, never longer, and never when a lone caller is waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# The write answers one result per item, in order: a value, or the exception for that item
# alone (the others still commit). An exception raised by the write fails the whole batch.
Write = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Write[T, R], max_items: int = 256, max_wait: float = 0.002) -> None:
        self._write = write
        self._max_items = max_items
        self._max_wait = max_wait
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._arrived = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._last_size = 0

    async def submit(self, item: T) -> R:
        """Writes `item` with whatever else is queued; its result once committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._arrived.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run())
        # A caller that goes away (a cancelled call) cancels its future: its item is left
        # out if its write has not begun, and may still be committed if it has, as any write
        # whose answer was lost.
        return await future

    async def _run(self) -> None:
        while self._queue:
            if self._last_size > 1 and len(self._queue) < self._max_items:
                await self._gather_more()
            batch = [entry for entry in self._queue[: self._max_items] if not entry[1].done()]
            del self._queue[: self._max_items]
            if not batch:
                continue
            self._last_size = len(batch)
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as e:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(_copy(e))
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _gather_more(self) -> None:
        """The previous batch had company: let callers about to submit join this one, up to
        `max_wait` seconds or `max_items` items."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        while len(self._queue) < self._max_items:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)


def _copy(error: Exception) -> Exception:
    """Each caller raises an exception of its own: one instance raised by many coroutines
    would collect all their tracebacks."""
    try:
        copy = type(error)(*error.args)
    except Exception:
        return error
    copy.__cause__ = error.__cause__
    return copy
