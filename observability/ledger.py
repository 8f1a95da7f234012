"""Writes ledger rows off the routing hot path: buffered in memory, flushed in batches.

The router only appends a dict to a list. A background task flushes every
MESHSITE_LEDGER_FLUSH_SECONDS or when a batch is full; the node flushes what is left when it stops,
and an `atexit` hook flushes synchronously on a graceful process exit. A failed write keeps the rows
for the next attempt (up to MAX_BUFFERED, beyond which the oldest are dropped with an error log).

Writes run on one dedicated thread that keeps its database connection: on Postgres one binary
`COPY` per batch (one tuple per row, adapted by psycopg's C code; `executemany` spent more Python
time, under the GIL the routing needs, than the routing itself), elsewhere (SQLite, the embedded
default) one `executemany`. Building model instances and reconnecting per flush cost more still.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, partial
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper

from meshsite.limits import LIMITS
from rooms.timestamps import utc_text

from .models import ToolCall

logger = logging.getLogger(__name__)
MAX_BUFFERED = 200_000


_ZERO = Decimal(0)


@cache
def _fields() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(quoted columns, attnames) of every ToolCall column but the id, in one order."""
    fields = [f for f in ToolCall._meta.concrete_fields if not f.primary_key]
    return tuple(connection.ops.quote_name(str(f.column)) for f in fields), tuple(f.attname for f in fields)


# Rows per SQLite INSERT statement: within the 999 parameters older SQLite builds allow (24
# columns). See Ledger._write for why several rows per statement.
ROWS_PER_INSERT = 40


@cache
def insert_statement(rows: int = 1) -> tuple[str, tuple[str, ...]]:
    columns, attnames = _fields()
    table = connection.ops.quote_name(ToolCall._meta.db_table)
    values = ", ".join([f"({', '.join(['%s'] * len(columns))})"] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}", attnames


def copy_statement() -> str:
    columns, _ = _fields()
    return (
        f"COPY {connection.ops.quote_name(ToolCall._meta.db_table)} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    )


def to_values(row: dict[str, Any], attnames: tuple[str, ...]) -> tuple[Any, ...]:
    """One row's values in column order, as Python values psycopg adapts itself (the COPY)."""
    values = []
    for name in attnames:
        value: Any = row.get(name)
        if isinstance(value, str):
            # Texts come from participants (a host's error message, a refused call's names):
            # Postgres text cannot hold NUL, and one bad row would fail its batch on every retry.
            if "\x00" in value:
                value = value.replace("\x00", "\ufffd")
        elif name == "started_at":
            value = datetime.fromtimestamp(value, tz=UTC)
        elif name == "cost" and value is None:
            value = _ZERO
        values.append(value)
    return tuple(values)


def to_parameters(batch: list[dict[str, Any]], attnames: tuple[str, ...]) -> list[list[Any]]:
    """The batch's `executemany` parameters for SQLite, built with as little Python per row as
    possible: the writer thread holds the GIL the routing needs while it builds them (a tenth of
    one process's throughput at c=32 in bench/relay.py). The values are picked in one C call per
    row; `started_at` becomes the naive text Django's SQLite backend stores
    (adapt_datetimefield_value), from a per-second cache when the database's zone is UTC. Decimals
    are adapted by the driver (Django registers `str` for them). SQLite text holds NUL as it is,
    so the replacement Postgres needs (to_values) is not done here."""
    zone = connection.timezone  # UTC unless the database's TIME_ZONE says otherwise
    pick = itemgetter(*attnames)
    at, cost_at = attnames.index("started_at"), attnames.index("cost")
    absent = dict.fromkeys(attnames)  # a refusal row has no cost, for one

    naive_text: Callable[[float], str] = (
        partial(utc_text, separator=" ")
        if zone == UTC
        else lambda seconds: str(datetime.fromtimestamp(seconds, tz=zone).replace(tzinfo=None))
    )
    parameters = []
    for row in batch:
        values = list(pick(absent | row))
        values[at] = naive_text(values[at])
        if values[cost_at] is None:
            values[cost_at] = _ZERO
        parameters.append(values)
    return parameters


def _insert(cursor: CursorWrapper, batch: list[dict[str, Any]]) -> None:
    """SQLite: ROWS_PER_INSERT rows per statement. The driver lets go of the GIL while SQLite runs a
    statement and takes it back to bind the next one's parameters: with one row per statement,
    that was one hand-over of the GIL per row, each making the routing thread wait for it."""
    many, attnames = insert_statement(ROWS_PER_INSERT)
    parameters = to_parameters(batch, attnames)
    whole = len(parameters) - len(parameters) % ROWS_PER_INSERT
    if whole:
        cursor.executemany(
            many,
            [
                [value for row in parameters[start : start + ROWS_PER_INSERT] for value in row]
                for start in range(0, whole, ROWS_PER_INSERT)
            ],
        )
    if whole < len(parameters):
        cursor.executemany(insert_statement()[0], parameters[whole:])


def _copy(cursor: CursorWrapper, batch: list[dict[str, Any]]) -> None:
    _, attnames = _fields()
    types = _column_types()  # before the COPY starts: it may query the catalog
    with connection.wrap_database_errors, cursor.cursor.copy(copy_statement()) as copy:
        copy.set_types(types)
        for row in batch:
            copy.write_row(to_values(row, attnames))


@cache
def _column_types() -> tuple[int, ...]:
    """The Postgres type oids of the COPY's columns, read from the table itself (binary COPY
    sends values in their column's own binary format)."""
    columns, _ = _fields()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
            [connection.ops.quote_name(ToolCall._meta.db_table)],
        )
        oids = dict(cursor.fetchall())
    missing = [column for column in columns if column.strip('"') not in oids]
    if missing:  # a migration not applied yet: the rows wait for the next flush, as on any error
        raise DatabaseError(f"the ledger table has no column {', '.join(missing)}")
    return tuple(int(oids[column.strip('"')]) for column in columns)


class Ledger:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None
        self.wakeup = asyncio.Event()
        self.dropped = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")

    def record(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= LIMITS.ledger_batch_size:
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
            with transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    _copy(cursor, batch)
                else:
                    _insert(cursor, batch)
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
