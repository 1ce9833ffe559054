"""Retention: finished deliveries older than --retention-days are pruned with their attempts,
then the events no delivery needs any more. It runs in the background in small batches, one
short transaction each with a pause between them, so calls and deliveries never wait long
behind it. PENDING deliveries, new or retrying, are never pruned."""

from __future__ import annotations

import asyncio
import logging

from mlflow_webhooks.server.background import Background
from mlflow_webhooks.server.delivery.dispatcher import Db
from mlflow_webhooks.server.store import Pruned, Store, now_ms

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
BATCH = 500  # rows per transaction: a few milliseconds of the database's time
PAUSE = 0.05  # seconds between batches, so other writers get the database in between
FIRST_PASS = 5.0  # seconds after start: the server settles before any pruning
INTERVAL = 600.0  # seconds between passes


def cutoff(now: int, days: int) -> int:
    """Unix milliseconds before which finished deliveries and unneeded events go."""
    return now - days * DAY_MS


class Retention(Background):
    def __init__(self, store: Store, db: Db, days: int) -> None:
        self._store = store
        self._db = db
        self._days = days

    async def prune(self) -> Pruned:
        """One pass: batch after batch until nothing past the window is left."""
        deliveries = events = 0
        limit = cutoff(now_ms(), self._days)
        while True:
            batch: Pruned = await self._db(self._store.prune, limit, BATCH)
            deliveries += batch.deliveries
            events += batch.events
            if batch.deliveries < BATCH and batch.events < BATCH:
                return Pruned(deliveries, events)
            await asyncio.sleep(PAUSE)

    async def _loop(self) -> None:
        await asyncio.sleep(FIRST_PASS)
        while True:
            try:
                pruned = await self.prune()
                if pruned.deliveries or pruned.events:
                    log.info(
                        "retention: pruned %d deliveries and %d events older than %d days",
                        pruned.deliveries,
                        pruned.events,
                        self._days,
                    )
            except Exception:
                # The next pass tries again; a database that is down now may be back then.
                log.exception("retention pass failed")
            await asyncio.sleep(INTERVAL)
