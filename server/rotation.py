"""Forgets rotated-out webhook secrets once their overlap window has ended.

Deliveries stop being signed with such a secret at the window's end by themselves
(Secrets.previous_at); this removes it from the database. The claim that next sends to the
webhook does (Store._claim), and this sweep does, every SWEEP_INTERVAL seconds, for webhooks
nothing is sent to. Every process runs one (--workers, replicas): each removal re-checks the
row's window in its UPDATE, so they never conflict, and a read comes first, so the write lock
is taken only when there is something to remove."""

from __future__ import annotations

import asyncio
import logging

from mlflow_webhooks.server.background import Background
from mlflow_webhooks.server.delivery.dispatcher import Db
from mlflow_webhooks.server.errors import Unavailable
from mlflow_webhooks.server.store import Store, now_ms

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 5.0  # seconds


class SecretSweep(Background):
    def __init__(self, store: Store, db: Db, interval: float = SWEEP_INTERVAL) -> None:
        self._store = store
        self._db = db
        self._interval = interval

    async def _loop(self) -> None:
        while True:
            try:
                forgotten = await self._db(self._store.forget_expired_secrets, now_ms())
                if forgotten:
                    log.info("forgot the old secret of %d webhooks: overlap ended", forgotten)
            except Unavailable:
                pass  # the health probe reports a database that does not answer
            except Exception:
                log.exception("forgetting rotated-out secrets failed")
            await asyncio.sleep(self._interval)
