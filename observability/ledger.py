"""Writes ledger rows off the routing hot path: buffered in memory, flushed in batches.

The router only appends a dict to a list. A background task flushes every
MESHSITE_LEDGER_FLUSH_SECONDS or when a batch is full; the node flushes what is left when it stops,
and an `atexit` hook flushes synchronously on a graceful process exit. A failed write keeps the rows
for the next attempt (up to MAX_BUFFERED, beyond which the oldest are dropped with an error log).
"""

import asyncio
import contextlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from .models import ToolCall

logger = logging.getLogger(__name__)
MAX_BUFFERED = 200_000


class Ledger:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None
        self.wakeup = asyncio.Event()
        self.dropped = 0

    def record(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= settings.MESHSITE_LEDGER_BATCH_SIZE:
            self.wakeup.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self._flush_forever(), name="ledger-flusher")

    async def _flush_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), settings.MESHSITE_LEDGER_FLUSH_SECONDS)
            self.wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        while self.rows:
            batch = self.rows[: settings.MESHSITE_LEDGER_BATCH_SIZE]
            if not await sync_to_async(self._write)(batch):
                return
            del self.rows[: len(batch)]

    def _write(self, batch: list[dict[str, Any]]) -> bool:
        close_old_connections()
        try:
            ToolCall.objects.bulk_create([ToolCall(**row) for row in batch])
        except DatabaseError:
            logger.exception("ledger: writing %d rows failed; keeping them for the next flush", len(batch))
            overflow = len(self.rows) - MAX_BUFFERED
            if overflow > 0:
                del self.rows[:overflow]
                self.dropped += overflow
                logger.error("ledger: buffer full, dropped %d oldest rows", overflow)
            return False
        return True

    def flush_sync(self) -> None:
        """Flushes from a thread with no event loop (interpreter exit)."""
        while self.rows:
            batch = self.rows[: settings.MESHSITE_LEDGER_BATCH_SIZE]
            if not self._write(batch):
                return
            del self.rows[: len(batch)]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        await self.flush()
