"""Writes to room queues: send, receive (lease), ack, nack, extend (docs/queues.md).

Every action takes `room` as a `Room` or its primary key. The hot path is one statement each:
send is an INSERT, receive one UPDATE … RETURNING that claims with `FOR UPDATE SKIP LOCKED` on
Postgres (queues/claim.py), ack a conditional DELETE. None opens a transaction of its own except
nack, so inside a caller's transaction they commit (and signal) with it.

Failed deliveries (a nack, or a lease that ran out) count towards the queue's `max_deliveries`;
the message then moves to `<queue>.dlq` with its last error and the deliveries it had.
"""

import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rooms.models import Room

from .claim import MESSAGES, Claimed, claim
from .delivery import Delivery
from .errors import MessageGone, MessageTooLarge, StaleReceipt, invalid
from .models import Queue, QueueMessage, new_message_id
from .names import check_queue_name, dead_letter_queue, is_dead_letter_queue
from .signals import send_message_sent_on_commit

__all__ = [
    "Delivery",
    "do_ack",
    "do_configure_queue",
    "do_extend",
    "do_nack",
    "do_receive",
    "do_send",
    "queue_settings",
]

MAX_DELAY = 86400.0  # seconds a send or a retry may be put off
MAX_VISIBILITY_TIMEOUT = 43200.0
MAX_BATCH = 100
MAX_ERROR_CHARS = 4000
MAX_IDENTITY_CHARS = 200

RoomRef = Room | int


def room_pk(room: RoomRef) -> int:
    return room.pk if isinstance(room, Room) else int(room)


def _seconds(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid(f"{name} must be a number of seconds from {low:g} to {high:g}", **{name: value})
    return float(value)


def _check_receipt(receipt: object) -> str:
    # An empty receipt is what an unleased row holds: it must never match.
    if not isinstance(receipt, str) or not receipt or len(receipt) > 48:
        raise invalid("receipt must be the non-empty string a receive returned")
    return receipt


# A JSON \u0000 escape (not an escaped backslash followed by "u0000"): Postgres' jsonb refuses it.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _encoded(body: Any) -> str:
    try:
        encoded = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise invalid(f"a queue message body must be JSON (no NaN or infinities): {error}") from None
    if _NUL_ESCAPE.search(encoded):
        raise invalid("a queue message body may not contain NUL characters (\\u0000)")
    return encoded


def queue_settings(room: RoomRef, queue: str) -> Queue:
    """The queue's settings row, created with the defaults on first use."""
    row, _created = Queue.objects.get_or_create(room_id=room_pk(room), name=check_queue_name(queue))
    return row


@transaction.atomic
def do_configure_queue(room: RoomRef, queue: str, **changes: float | int) -> Queue:
    """Changes a queue's settings (`max_deliveries`, `visibility_timeout`, `backoff_base`, `backoff_cap`)."""
    allowed = {"max_deliveries", "visibility_timeout", "backoff_base", "backoff_cap"}
    unknown = set(changes) - allowed
    if unknown:
        raise invalid(f"unknown queue setting(s): {', '.join(sorted(unknown))}")
    row = Queue.objects.select_for_update().filter(pk=queue_settings(room, queue).pk).get()
    for name, value in changes.items():
        if name == "max_deliveries":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise invalid("max_deliveries must be an integer from 1 to 1000")
        else:
            high = MAX_VISIBILITY_TIMEOUT if name == "visibility_timeout" else MAX_DELAY
            value = _seconds(value, name, 0.01 if name == "visibility_timeout" else 0, high)
        setattr(row, name, value)
    row.save()
    return row


def do_send(*, room: RoomRef, queue: str, body: Any, sent_by: str, delay: float = 0) -> QueueMessage:
    """Adds a message, visible after `delay` seconds: one INSERT. In the caller's transaction when
    there is one: the message exists (and `message_sent` fires) only if that transaction commits."""
    check_queue_name(queue)
    delay = _seconds(delay, "delay", 0, MAX_DELAY)
    encoded = _encoded(body)
    size, limit = len(encoded.encode()), settings.MESHSITE_QUEUE_MAX_MESSAGE_BYTES
    if size > limit:
        raise MessageTooLarge(size, limit)
    now = timezone.now()
    message = QueueMessage(
        id=new_message_id(),
        room_id=room_pk(room),
        queue=queue,
        body=body,
        sent_by=sent_by[:MAX_IDENTITY_CHARS],
        sent_at=now,
        visible_at=now + timedelta(seconds=delay),
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        # The body goes in as the JSON text measured above (the ORM would encode it again).
        cursor.execute(
            f"INSERT INTO {MESSAGES} (id, room_id, queue, body, sent_by, sent_at, visible_at, attempt, receipt, "
            "received_by, last_error, dead_attempts) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, '', '', '', 0)",
            [message.pk, message.room_id, queue, encoded, message.sent_by, adapt(now), adapt(message.visible_at)],
        )
    message._state.adding = False
    message._state.db = connection.alias
    send_message_sent_on_commit(message.room_id, queue, message.pk)
    return message


def do_receive(
    *,
    room: RoomRef,
    queue: str,
    consumer: str,
    max_messages: int = 1,
    visibility_timeout: float | None = None,
) -> list[Delivery]:
    """Leases up to `max_messages` visible messages, oldest first (a batch in send order), for
    `visibility_timeout` seconds (the queue's default when None). Returns [] at once when none is
    visible. One statement per round (queues/claim.py); no transaction of its own."""
    check_queue_name(queue)
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not 1 <= max_messages <= MAX_BATCH:
        raise invalid(f"max_messages must be an integer from 1 to {MAX_BATCH}")
    if visibility_timeout is not None:
        lease = _seconds(visibility_timeout, "visibility_timeout", 0.01, MAX_VISIBILITY_TIMEOUT)
    room_id = room_pk(room)
    if visibility_timeout is None:
        lease = queue_settings(room_id, queue).visibility_timeout
    else:
        _ensure_settings_row(room_id, queue)
    dlq = None if is_dead_letter_queue(queue) else dead_letter_queue(queue)
    deliveries: list[Delivery] = []
    # Spent messages take places in a round; they are dead-lettered and the next round looks again.
    for _round in range(3):
        now = timezone.now()
        receipt = secrets.token_urlsafe(24)
        rows = claim(
            room_id=room_id,
            queue=queue,
            dlq=dlq,
            consumer=consumer[:MAX_IDENTITY_CHARS],
            receipt=receipt,
            now=now,
            lease_end=now + timedelta(seconds=lease),
            limit=max_messages - len(deliveries),
        )
        spent = [row for row in rows if row.queue != queue]
        for row in spent:
            send_message_sent_on_commit(room_id, row.queue, row.id)
        deliveries += [_delivery(row) for row in rows if row.queue == queue]
        if not spent or len(deliveries) >= max_messages:
            break
    return deliveries


def _delivery(row: Claimed) -> Delivery:
    return Delivery(
        message_id=row.id,
        receipt=row.receipt,
        body=row.body,
        attempt=row.attempt,
        sent_at=row.sent_at,
        sent_by=row.sent_by,
        queue=row.queue,
        last_error=row.last_error,
        dead_attempts=row.dead_attempts,
    )


_known_settings_rows: set[tuple[int, str]] = set()


def _ensure_settings_row(room_id: int, queue: str) -> None:
    """Creates the settings row on a queue's first receive in this process (so the admin lists it)."""
    if (room_id, queue) not in _known_settings_rows:
        queue_settings(room_id, queue)
        _known_settings_rows.add((room_id, queue))


def _dead_letter(row: QueueMessage, error: str, now: datetime) -> None:
    """Moves a message (locked by the caller) to its queue's dead-letter queue, visible at once."""
    target = dead_letter_queue(row.queue)
    QueueMessage.objects.filter(pk=row.pk).update(
        queue=target,
        attempt=0,
        receipt="",
        received_by="",
        visible_at=now,
        last_error=error[:MAX_ERROR_CHARS],
        dead_attempts=row.attempt,
    )
    send_message_sent_on_commit(row.room_id, target, row.pk)


def _leased(room_id: int, queue: str, message_id: str, receipt: str) -> QueueMessage:
    """The message, locked, if `receipt` is its current lease; else the error that says why not."""
    check_queue_name(queue)
    _check_receipt(receipt)
    row = QueueMessage.objects.select_for_update().filter(pk=message_id, room_id=room_id, queue=queue).first()
    if row is None:
        raise MessageGone(queue, message_id)
    if not secrets.compare_digest(row.receipt, receipt):
        raise StaleReceipt(queue, message_id)
    return row


def _refuse(room_id: int, queue: str, message_id: str) -> None:
    if QueueMessage.objects.filter(pk=message_id, room_id=room_id, queue=queue).exists():
        raise StaleReceipt(queue, message_id)
    raise MessageGone(queue, message_id)


def do_ack(*, room: RoomRef, queue: str, message_id: str, receipt: str) -> None:
    """Done with the message: it is deleted. Accepted as long as nobody received it since, even
    after the lease ran out; refused (StaleReceipt, MessageGone) otherwise. One statement."""
    check_queue_name(queue)
    room_id = room_pk(room)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {MESSAGES} WHERE id = %s AND room_id = %s AND queue = %s AND receipt = %s",
            [message_id, room_id, queue, _check_receipt(receipt)],
        )
        deleted = cursor.rowcount
    if not deleted:
        _refuse(room_id, queue, message_id)


@transaction.atomic
def do_nack(
    *,
    room: RoomRef,
    queue: str,
    message_id: str,
    receipt: str,
    error: str = "",
    retry_delay: float | None = None,
) -> None:
    """This delivery failed: the message is retried after `retry_delay` seconds (the queue's
    exponential backoff when None), or moves to the dead-letter queue if it has had
    `max_deliveries` deliveries."""
    if retry_delay is not None:
        retry_delay = _seconds(retry_delay, "retry_delay", 0, MAX_DELAY)
    room_id = room_pk(room)
    row = _leased(room_id, queue, message_id, receipt)
    config = queue_settings(room_id, queue)
    now = timezone.now()
    error = str(error)[:MAX_ERROR_CHARS]
    if not is_dead_letter_queue(queue) and row.attempt >= config.max_deliveries:
        _dead_letter(row, error or f"nacked on delivery {row.attempt} of {config.max_deliveries}", now)
        return
    delay = retry_delay if retry_delay is not None else config.backoff(row.attempt)
    QueueMessage.objects.filter(pk=row.pk).update(
        receipt="", received_by="", last_error=error, visible_at=now + timedelta(seconds=delay)
    )


def do_extend(*, room: RoomRef, queue: str, message_id: str, receipt: str, visibility_timeout: float) -> datetime:
    """Heartbeat: the lease now ends `visibility_timeout` seconds from now. Returns when."""
    check_queue_name(queue)
    lease = _seconds(visibility_timeout, "visibility_timeout", 0.01, MAX_VISIBILITY_TIMEOUT)
    room_id = room_pk(room)
    visible_at = timezone.now() + timedelta(seconds=lease)
    updated = QueueMessage.objects.filter(
        pk=message_id, room_id=room_id, queue=queue, receipt=_check_receipt(receipt)
    ).update(visible_at=visible_at)
    if not updated:
        _refuse(room_id, queue, message_id)
    return visible_at
