"""Recovering inbound messages whose task was lost: its Celery worker was killed mid-way (its
lease runs out; the broker would redeliver only after its visibility timeout), or the enqueue never
reached the broker. Every MESHSITE_MAIL_SWEEP_SECONDS a thread in each Celery worker (and, on the
embedded default, in the web process once mail has arrived) puts such messages back to `queued`
and enqueues them; the task's claim makes any duplicate a no-op.

`lease_until` is the row's clock: while processing, when the attempt's lease ends (renewed while
the agent works); while queued, when a sweep may enqueue it again (a retry's delay, or a grace
period after the enqueue at commit)."""

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

from celery.signals import worker_ready
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Q
from django.utils import timezone

from observability.tasks import enqueue

from .models import InboundMessage

logger = logging.getLogger(__name__)
BATCH = 100


def sweep_mail() -> int:
    """Enqueues the messages due again; returns how many."""
    from .tasks import process_inbound

    now = timezone.now()
    grace = now + timedelta(seconds=settings.MESHSITE_MAIL_REQUEUE_SECONDS)
    due = Q(status=InboundMessage.Status.QUEUED) | Q(status=InboundMessage.Status.PROCESSING)
    count = 0
    for pk in InboundMessage.objects.filter(due, lease_until__lt=now).values_list("pk", flat=True)[:BATCH]:
        # conditional: a row another sweeper (or the task) took meanwhile is left alone
        taken = InboundMessage.objects.filter(due, pk=pk, lease_until__lt=now).update(
            status=InboundMessage.Status.QUEUED, lease_until=grace
        )
        if taken:
            enqueue(process_inbound, pk)
            count += 1
    return count


@contextlib.contextmanager
def renewing_lease(inbound_id: int) -> Iterator[None]:
    """Keeps a processing message's lease from running out while its agent works."""
    seconds = settings.MESHSITE_MAIL_PROCESS_SECONDS
    stop = threading.Event()

    def renew() -> None:
        try:
            while not stop.wait(seconds / 3):
                InboundMessage.objects.filter(pk=inbound_id, status=InboundMessage.Status.PROCESSING).update(
                    lease_until=timezone.now() + timedelta(seconds=seconds)
                )
        finally:
            close_old_connections()

    thread = threading.Thread(target=renew, name=f"mail-lease-{inbound_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


class MailSweeper:
    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mail-sweep", daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(settings.MESHSITE_MAIL_SWEEP_SECONDS):
            try:
                swept = sweep_mail()
                if swept:
                    logger.info("mail sweep: %d message(s) enqueued again", swept)
            except DatabaseError:
                logger.exception("mail sweep failed; retrying")
            finally:
                close_old_connections()


_sweeper: MailSweeper | None = None
_lock = threading.Lock()


def ensure_sweeper() -> None:
    global _sweeper
    with _lock:
        if _sweeper is None:
            _sweeper = MailSweeper()
            _sweeper.thread.start()


@worker_ready.connect
def _on_worker_ready(**kwargs: object) -> None:
    ensure_sweeper()
