"""Worker services: a Python service whose class is a `meshsite_client.agents.Worker`, bound to a
room queue by `Service.config["queue"]` (docs/agents.md "A Worker").

How a message gets processed:
1. `queues.signals.message_sent` (after the send committed) → `on_message_sent` finds the Worker
   services bound to that queue in that room and enqueues `agents.worker_drain(service_id, room_id)`
   (agents/tasks.py).
2. The task makes sure the Worker is in the room (worker_runtime.py), then, in one transaction,
   claims one of the service's `concurrency` slots in the room (a conditional update on a leased
   `WorkerSlot`) and receives the next message (`do_receive`, leased for the visibility timeout).
   All slots busy → it returns: a slot holder always looks again before it leaves.
3. It runs the Worker's `process_message`, renewing both leases meanwhile, and then either records
   the result and acks in one transaction (`WorkerMessage` + `do_ack`), or nacks with the error
   (retry with backoff; `<queue>.dlq` after the queue's max deliveries).
4. It drains the queue that way, one message after the other, releases the slot, and looks once
   more for a message that arrived while it was releasing.

A Celery worker killed mid-message leaves a leased message and a leased slot; both leases run out
after the visibility timeout, and the sweep (`agents.tasks.sweep`, every
MESHSITE_WORKER_SWEEP_SECONDS in every Celery worker's main process, and in the web process on the
embedded default) enqueues a drain for every Worker with visible messages and a free slot. The
message is processed again (attempt 2); its result is recorded once, since "done" and "acked" are
one transaction.
"""

import functools
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from queues.actions import do_ack, do_nack, do_receive, queue_settings
from queues.delivery import Delivery
from queues.errors import MessageGone, StaleReceipt
from queues.models import QueueMessage
from rooms.models import Project, Room

from .actions import do_create_service
from .introspection import ServiceClassError, import_agent_class
from .models import Service, WorkerMessage, WorkerSlot

logger = logging.getLogger(__name__)

MAX_CONCURRENCY = 64
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class Binding:
    """What a Worker service's config says about its queue."""

    queue: str
    concurrency: int
    visibility_timeout: float

    @classmethod
    def of(cls, service: Service) -> "Binding":
        config = service.config if isinstance(service.config, dict) else {}
        queue = config.get("queue")
        if not isinstance(queue, str) or not queue:
            raise ServiceClassError(f"service {service.name!r} names no queue in its config")
        concurrency = config.get("concurrency", 1)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ServiceClassError(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}")
        timeout = config.get("visibility_timeout", 60.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 43200:
            raise ServiceClassError("visibility_timeout must be from 1 to 43200 seconds")
        return cls(queue, concurrency, float(timeout))


def worker_services() -> "Any":
    """Enabled Python services bound to a queue."""
    return Service.objects.filter(enabled=True, kind=Service.Kind.PYTHON, config__has_key="queue")


def do_create_worker_service(project: Project, name: str, class_path: str, **fields: Any) -> Service:
    """Creates a Worker service; `config` defaults `queue` and `concurrency` from the class."""
    try:
        agent_class = import_agent_class(class_path)
    except ImportError as exc:
        raise ServiceClassError(f"cannot import {class_path!r}: {exc}") from None
    from meshsite_client.agents import Worker

    if not isinstance(agent_class, type) or not issubclass(agent_class, Worker):
        raise ServiceClassError(f"{class_path!r} is not a subclass of meshsite_client.agents.Worker")
    config = dict(fields.pop("config", None) or {})
    config.setdefault("queue", agent_class.queue)
    config.setdefault("concurrency", agent_class.concurrency)
    config.setdefault("visibility_timeout", agent_class.visibility_timeout)
    service = Service(project=project, name=name, class_path=class_path, config=config)
    Binding.of(service)  # refuses a bad config before anything is written
    created = do_create_service(project, name, class_path=class_path, config=config, **fields)
    forget_bindings()
    return created


BINDINGS_SECONDS = 1.0
_bindings: tuple[float, dict[str, list[tuple[int, int, int | None]]]] | None = None


def _bindings_by_queue() -> dict[str, list[tuple[int, int, int | None]]]:
    """queue name → (service id, project id, room id or None) of every Worker service, read at most
    once a second per process: a send to a queue no Worker is bound to (the common case) costs no
    query. A service created elsewhere is seen within a second; messages sent before then are
    picked up by the sweep."""
    global _bindings
    now = time.monotonic()
    cached = _bindings
    if cached is not None and now - cached[0] < BINDINGS_SECONDS:
        return cached[1]
    table: dict[str, list[tuple[int, int, int | None]]] = {}
    for pk, project_id, room_id, config in worker_services().values_list("pk", "project_id", "room_id", "config"):
        queue = config.get("queue") if isinstance(config, dict) else None
        if isinstance(queue, str):
            table.setdefault(queue, []).append((pk, project_id, room_id))
    _bindings = (now, table)
    return table


def forget_bindings() -> None:
    global _bindings
    _bindings = None


@functools.lru_cache(maxsize=4096)
def _project_of(room_id: int) -> int | None:
    # a room never changes project
    return Room.objects.filter(pk=room_id).values_list("project_id", flat=True).first()


def bound_services(room_id: int, queue: str) -> list[int]:
    """Ids of the Worker services bound to `queue` in the room."""
    candidates = _bindings_by_queue().get(queue)
    if not candidates:
        return []
    project_id = _project_of(room_id)
    return [pk for pk, project, room in candidates if project == project_id and room in (None, room_id)]


def on_message_sent(sender: Any, *, room: int, queue: str, message_id: str, **kwargs: Any) -> None:
    """`message_sent` receiver (runs after the send committed): wake the bound Workers."""
    from observability.tasks import enqueue

    from .tasks import worker_drain

    for service_id in bound_services(room, queue):
        enqueue(worker_drain, service_id, room)


# -- slots ------------------------------------------------------------------------------------


def new_holder() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


def _free() -> Q:
    return Q(holder="") | Q(lease_until__lt=timezone.now())


def do_claim_slot(service_id: int, room_id: int, binding: Binding, holder: str) -> bool:
    """Leases one of the service's free slots in the room to `holder` (unique per drain); False
    when all are busy.

    One conditional UPDATE of the first free slot (free: no holder, or its lease ran out). The
    slot rows are created the first time, or when the concurrency grew."""
    slots = WorkerSlot.objects.filter(service_id=service_id, room_id=room_id, slot__lt=binding.concurrency)
    for _attempt in range(5):
        first_free = slots.filter(_free()).order_by("slot").values("pk")[:1]
        lease_until = timezone.now() + timedelta(seconds=binding.visibility_timeout)
        if WorkerSlot.objects.filter(_free(), pk__in=Subquery(first_free)).update(
            holder=holder, lease_until=lease_until
        ):
            return True
        if slots.count() < binding.concurrency:
            WorkerSlot.objects.bulk_create(
                [WorkerSlot(service_id=service_id, room_id=room_id, slot=n) for n in range(binding.concurrency)],
                ignore_conflicts=True,
            )
        elif not slots.filter(_free()).exists():
            return False  # all busy; otherwise another claimer took the free one first: look again
    return False


def _held(service_id: int, room_id: int, holder: str) -> "Any":
    return WorkerSlot.objects.filter(service_id=service_id, room_id=room_id, holder=holder)


def do_extend_slot(service_id: int, room_id: int, holder: str, seconds: float) -> bool:
    return _held(service_id, room_id, holder).update(lease_until=timezone.now() + timedelta(seconds=seconds)) == 1


def do_release_slot(service_id: int, room_id: int, holder: str) -> None:
    _held(service_id, room_id, holder).update(holder="", lease_until=None)


def has_visible_messages(room_id: int, queue: str) -> bool:
    return QueueMessage.objects.filter(room_id=room_id, queue=queue, visible_at__lte=timezone.now()).exists()


# -- processing -------------------------------------------------------------------------------


def drain(service_id: int, room_id: int) -> int:
    """Processes the service's queue in the room while it holds a slot; returns how many messages
    it processed (ok or failed). Safe to call any number of times, from any process."""
    # One query for both: the service (still enabled and bound) and the room's name in its project.
    room_name = Room.objects.filter(pk=room_id, project_id=OuterRef("project_id")).values("name")[:1]
    service = (
        worker_services()
        .select_related("project")
        .filter(Q(room__isnull=True) | Q(room_id=room_id), pk=service_id)
        .annotate(room_name=Subquery(room_name))
        .first()
    )
    if service is None or service.room_name is None:
        return 0  # disabled, deleted or moved meanwhile
    room = Room(pk=room_id, project=service.project, name=service.room_name)
    binding = Binding.of(service)
    holder = new_holder()
    processed = 0
    while True:
        _joined(service, room)  # before any lease: a Worker that cannot join must not use up deliveries
        claimed, delivery = _claim_and_receive(service, room, binding, holder)
        if not claimed:
            return processed  # every slot is busy; their holders look again before leaving
        try:
            while delivery is not None:
                process_delivery(service, room, binding, delivery, holder)
                processed += 1
                delivery = _next(service, room, binding) if _joined(service, room) else None
        finally:
            with transaction.atomic():
                relax_commit()
                do_release_slot(service.pk, room.pk, holder)
        # a message sent while we released found the slot busy: it is ours to process
        if not has_visible_messages(room.pk, binding.queue):
            return processed


def relax_commit() -> None:
    """This transaction's commit does not wait for the WAL flush (Postgres `synchronous_commit`
    off, for this transaction only): it holds bookkeeping whose loss in a database crash only
    means a redelivery (slot and message leases). A later synchronous commit, such as the
    result-and-ack one, flushes it too. The pick-up path then waits for no disk flush."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _claim_and_receive(service: Service, room: Room, binding: Binding, holder: str) -> tuple[bool, Delivery | None]:
    """A slot and the next message, in one transaction (one commit on the pick-up path)."""
    with transaction.atomic():
        relax_commit()
        if not do_claim_slot(service.pk, room.pk, binding, holder):
            return False, None
        return True, _receive(service, room, binding)


def _joined(service: Service, room: Room) -> bool:
    from .worker_runtime import connect

    connect(service, room)  # raises WorkerUnavailable: the task is retried; no message is leased
    return True


def _receive(service: Service, room: Room, binding: Binding) -> Delivery | None:
    """The next message, leased; the caller holds the (relaxed) transaction."""
    deliveries = do_receive(
        room=room,
        queue=binding.queue,
        consumer=service.name,
        max_messages=1,
        visibility_timeout=binding.visibility_timeout,
    )
    return deliveries[0] if deliveries else None


def _next(service: Service, room: Room, binding: Binding) -> Delivery | None:
    with transaction.atomic():
        relax_commit()
        return _receive(service, room, binding)


def process_delivery(service: Service, room: Room, binding: Binding, delivery: Delivery, holder: str) -> None:
    """Runs `process_message` for one delivery, then acks with its result or nacks with its error."""
    from .worker_runtime import WorkerFailed, run_message

    started_at = timezone.now()
    try:
        result = run_message(service, room, binding, delivery, holder=holder)
    except WorkerFailed as failure:
        logger.warning(
            "worker %s: message %s failed (attempt %d): %s",
            service.name,
            delivery.message_id,
            delivery.attempt,
            failure.error,
        )
        try:
            do_nack(
                room=room,
                queue=delivery.queue,
                message_id=delivery.message_id,
                receipt=delivery.receipt,
                error=failure.error[:MAX_ERROR_CHARS],
            )
        except (MessageGone, StaleReceipt):
            logger.warning("worker %s: message %s was delivered again meanwhile", service.name, delivery.message_id)
        else:
            _drain_after_backoff(service, room, delivery)
        return
    try:
        do_record_and_ack(service, room, delivery, result, started_at)
    except (MessageGone, StaleReceipt, IntegrityError):
        # Our lease ran out and someone else has it (or processed it): theirs is the one recorded.
        logger.warning("worker %s: lost the lease of message %s before its ack", service.name, delivery.message_id)


def _drain_after_backoff(service: Service, room: Room, delivery: Delivery) -> None:
    """A nacked message comes back after its backoff: a drain then, rather than at the next sweep."""
    from observability.tasks import enqueue

    from .tasks import worker_drain

    config = queue_settings(room, delivery.queue)
    if delivery.attempt < config.max_deliveries:
        enqueue(worker_drain, service.pk, room.pk, countdown=config.backoff(delivery.attempt) + 0.05)


@transaction.atomic
def do_record_and_ack(service: Service, room: Room, delivery: Delivery, result: Any, started_at: Any) -> None:
    """ "Done" and "acknowledged" in one transaction: a message's result is recorded exactly once."""
    WorkerMessage.objects.create(
        service=service,
        room=room,
        queue=delivery.queue,
        message_id=delivery.message_id,
        attempt=delivery.attempt,
        result=result,
        started_at=started_at,
        finished_at=timezone.now(),
    )
    do_ack(room=room, queue=delivery.queue, message_id=delivery.message_id, receipt=delivery.receipt)


# -- the sweep --------------------------------------------------------------------------------


def pending_drains(visible_before: Any) -> list[tuple[int, int]]:
    """(service id, room id) of every Worker with a free slot and messages visible since
    `visible_before` (ones that just became visible have a drain on its way already)."""
    pairs: list[tuple[int, int]] = []
    for service in worker_services():
        try:
            binding = Binding.of(service)
        except ServiceClassError:
            continue
        messages = QueueMessage.objects.filter(
            queue=binding.queue, visible_at__lte=visible_before, room__project_id=service.project_id
        )
        if service.room_id is not None:
            messages = messages.filter(room_id=service.room_id)
        for room_id in messages.values_list("room_id", flat=True).distinct().order_by():
            busy = (
                WorkerSlot.objects.filter(service=service, room_id=room_id, slot__lt=binding.concurrency)
                .exclude(_free())
                .count()
            )
            if busy < binding.concurrency:
                pairs.append((service.pk, room_id))
    return pairs
