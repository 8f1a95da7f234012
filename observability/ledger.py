"""Writes ledger rows off the routing hot path: buffered in memory, flushed in batches.

The router only appends a dict to a list. A background task flushes every
MESHSITE_LEDGER_FLUSH_SECONDS or when a batch is full; the node flushes what is left when it stops,
and an `atexit` hook flushes synchronously on a graceful process exit. A failed write keeps the rows
for the next attempt (up to MAX_BUFFERED, beyond which the oldest are dropped with an error log).

Writes run on one dedicated thread that keeps its database connection, as one `executemany` per
batch: building model instances and reconnecting per flush cost more CPU (and GIL) than the
routing itself at a few thousand calls a second.
"""

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from .models import ToolCall

logger = logging.getLogger(__name__)
MAX_BUFFERED = 200_000


@cache
def insert_statement() -> tuple[str, tuple[str, ...]]:
    fields = [f for f in ToolCall._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = connection.ops.quote_name(ToolCall._meta.db_table)
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", tuple(f.attname for f in fields)


def to_parameters(row: dict[str, Any], attnames: tuple[str, ...]) -> list[Any]:
    values = {"cost": Decimal(0), **row}
    for key, value in values.items():
        # Texts come from participants (a host's error message, a refused call's names); Postgres
        # text cannot hold NUL, and one bad row would otherwise fail its whole batch on every retry.
        if isinstance(value, str) and "\x00" in value:
            values[key] = value.replace("\x00", "\ufffd")
    values["started_at"] = connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(row["started_at"], tz=UTC))
    values["cost"] = connection.ops.adapt_decimalfield_value(values["cost"], 18, 9)
    return [values[name] for name in attnames]


class Ledger:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None
        self.wakeup = asyncio.Event()
        self.dropped = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")

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
            written = await asyncio.get_running_loop().run_in_executor(self.executor, self._write, batch)
            if not written:
                self._drop_overflow()
                return
            del self.rows[: len(batch)]

    def _write(self, batch: list[dict[str, Any]]) -> bool:
        try:
            sql, attnames = insert_statement()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(sql, [to_parameters(row, attnames) for row in batch])
        except DatabaseError:
            logger.exception("ledger: writing %d rows failed; keeping them for the next flush", len(batch))
            connection.close()  # a broken connection is replaced on the next attempt
            return False
        return True

    def _drop_overflow(self) -> None:
        overflow = len(self.rows) - MAX_BUFFERED
        if overflow > 0:
            del self.rows[:overflow]
            self.dropped += overflow
            logger.error("ledger: the database is unavailable and the buffer is full: dropped %d rows", overflow)

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
        # the writer thread's own connection: `connection` resolves per thread
        await asyncio.get_running_loop().run_in_executor(self.executor, lambda: connection.close())
        self.executor.shutdown()
