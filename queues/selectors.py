"""Reads of room queues: sizes, a look at what is waiting, and the list of queues."""

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .actions import RoomRef, room_pk
from .models import Queue, QueueMessage
from .names import check_queue_name, dead_letter_queue, is_dead_letter_queue

MAX_PEEK = 100


def _counts(messages: "QuerySet[QueueMessage]") -> dict[str, Any]:
    now = timezone.now()
    return messages.aggregate(
        visible=Count("pk", filter=Q(visible_at__lte=now)),
        in_flight=Count("pk", filter=Q(visible_at__gt=now) & ~Q(receipt="")),
        delayed=Count("pk", filter=Q(visible_at__gt=now, receipt="")),
    )


def queue_stats(room: RoomRef, queue: str) -> dict[str, int]:
    """`visible`: receivable now (including leases that ran out); `in_flight`: leased;
    `delayed`: sent with a delay or waiting out a retry backoff; `dead`: in `<queue>.dlq`
    (always 0 for a dead-letter queue itself)."""
    room_id = room_pk(room)
    check_queue_name(queue)
    counts = _counts(QueueMessage.objects.filter(room_id=room_id, queue=queue))
    dead = 0
    if not is_dead_letter_queue(queue):
        dead = QueueMessage.objects.filter(room_id=room_id, queue=dead_letter_queue(queue)).count()
    return {**counts, "dead": dead}


def peek(room: RoomRef, queue: str, limit: int = 10) -> list[dict[str, Any]]:
    """The next messages in delivery order, without leasing them (in-flight ones included, with
    their state), and never their receipts."""
    check_queue_name(queue)
    now = timezone.now()
    rows = QueueMessage.objects.filter(room_id=room_pk(room), queue=queue).order_by("visible_at", "sent_at")
    return [row.to_record(now) for row in rows[: max(1, min(limit, MAX_PEEK))]]


def list_queues(room: RoomRef) -> list[dict[str, Any]]:
    """Every queue of the room that has messages or settings, by name, with its sizes."""
    room_id = room_pk(room)
    now = timezone.now()
    sizes: dict[str, dict[str, Any]] = {}
    grouped = (
        QueueMessage.objects.filter(room_id=room_id)
        .values("queue")
        .annotate(
            visible=Count("pk", filter=Q(visible_at__lte=now)),
            in_flight=Count("pk", filter=Q(visible_at__gt=now) & ~Q(receipt="")),
            delayed=Count("pk", filter=Q(visible_at__gt=now, receipt="")),
        )
        .order_by()
    )
    for row in grouped:
        sizes[row["queue"]] = {"visible": row["visible"], "in_flight": row["in_flight"], "delayed": row["delayed"]}
    configured = {q.name: q.settings_record() for q in Queue.objects.filter(room_id=room_id)}
    empty = {"visible": 0, "in_flight": 0, "delayed": 0}
    listing = []
    for name in sorted(set(sizes) | set(configured)):
        dead = 0 if is_dead_letter_queue(name) else sum(sizes.get(dead_letter_queue(name), empty).values())
        listing.append({"name": name, **sizes.get(name, empty), "dead": dead, "settings": configured.get(name)})
    return listing
