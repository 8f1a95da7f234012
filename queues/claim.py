"""The claim: one UPDATE statement that leases the oldest visible messages of a queue.

    UPDATE queues_queuemessage SET <lease, or dead-letter if spent> WHERE id IN (
        SELECT id … WHERE room, queue, visible_at <= now ORDER BY visible_at LIMIT n [FOR UPDATE SKIP LOCKED]
    ) RETURNING *

On Postgres the inner `FOR UPDATE SKIP LOCKED` makes concurrent receivers pass over each other's
rows instead of queueing behind them; on SQLite (no row locks, writers serialised) the clause is
left out and the statement is atomic by itself. Either way it is one round trip in autocommit, or
part of the caller's transaction when there is one.

A row whose lease ran out after `max_deliveries` deliveries is "spent": the same statement moves it
to the dead-letter queue instead of leasing it (a `.dlq` never dead-letters further).
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import DEFAULT_MAX_DELIVERIES, Queue, QueueMessage

MESSAGES = QueueMessage._meta.db_table
QUEUES = Queue._meta.db_table


COLUMNS = ("id", "queue", "body", "attempt", "receipt", "sent_at", "sent_by", "last_error", "dead_attempts")


def claim_sql(*, skip_locked: bool, limited: bool) -> str:
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    spent = (
        f"(receipt <> '' AND attempt >= COALESCE((SELECT max_deliveries FROM {QUEUES} "
        "WHERE room_id = %(room)s AND name = %(queue)s), %(default_max)s))"
        if limited
        else "(1 = 0)"
    )
    # `picked` decides once per row whether it is spent; the UPDATE leases or dead-letters it.
    return f"""
        WITH picked AS (
            SELECT id, {spent} AS spent FROM {MESSAGES}
            WHERE room_id = %(room)s AND queue = %(queue)s AND visible_at <= %(now)s
            ORDER BY visible_at, sent_at
            LIMIT %(limit)s{lock}
        )
        UPDATE {MESSAGES} SET
            queue = CASE WHEN picked.spent THEN %(dlq)s ELSE {MESSAGES}.queue END,
            receipt = CASE WHEN picked.spent THEN '' ELSE %(receipt)s END,
            received_by = CASE WHEN picked.spent THEN '' ELSE %(consumer)s END,
            last_error = CASE WHEN picked.spent
                THEN 'visibility timeout expired on delivery ' || {MESSAGES}.attempt
                ELSE {MESSAGES}.last_error END,
            dead_attempts = CASE WHEN picked.spent THEN {MESSAGES}.attempt ELSE {MESSAGES}.dead_attempts END,
            visible_at = CASE WHEN picked.spent THEN %(now)s ELSE %(lease_end)s END,
            attempt = CASE WHEN picked.spent THEN 0 ELSE {MESSAGES}.attempt + 1 END
        FROM picked WHERE {MESSAGES}.id = picked.id
        RETURNING {", ".join(f"{MESSAGES}.{column}" for column in COLUMNS)}
    """


@dataclass(frozen=True)
class Claimed:
    id: str
    queue: str
    body: Any
    attempt: int
    receipt: str
    sent_at: datetime
    sent_by: str
    last_error: str
    dead_attempts: int


def as_datetime(value: datetime | str) -> datetime:
    """Postgres returns aware datetimes; SQLite the naive UTC text Django stores there."""
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    if moment is None:
        raise ValueError(f"not a datetime: {value!r}")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def claim(
    *,
    room_id: int,
    queue: str,
    dlq: str | None,
    consumer: str,
    receipt: str,
    now: datetime,
    lease_end: datetime,
    limit: int,
) -> list[Claimed]:
    """Rows leased to `receipt` (queue == `queue`) and rows dead-lettered (queue == `dlq`), in send order."""
    adapt = connection.ops.adapt_datetimefield_value
    sql = claim_sql(skip_locked=connection.features.has_select_for_update_skip_locked, limited=dlq is not None)
    params: dict[str, Any] = {
        "room": room_id,
        "queue": queue,
        "dlq": dlq or queue,
        "consumer": consumer,
        "receipt": receipt,
        "now": adapt(now),
        "lease_end": adapt(lease_end),
        "limit": limit,
        "default_max": DEFAULT_MAX_DELIVERIES,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    claimed = [
        Claimed(
            id=row[0],
            queue=row[1],
            body=json.loads(row[2]),
            attempt=row[3],
            receipt=row[4],
            sent_at=as_datetime(row[5]),
            sent_by=row[6],
            last_error=row[7],
            dead_attempts=row[8],
        )
        for row in rows
    ]
    claimed.sort(key=lambda row: (row.sent_at, row.id))  # RETURNING keeps no order
    return claimed
