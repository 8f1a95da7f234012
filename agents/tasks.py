"""Celery tasks of the agents app, and the sweep every Celery worker runs beside them.

`agents.worker_drain(service_id, room_id)` processes a Worker's queue in a room (agents/workers.py).
It is enqueued when a message is sent (`queues.signals.message_sent`, after commit) and by the
sweep; it takes ids, acks late, is rejected (redelivered) when its worker is lost, and is
idempotent: any number of drains for one Worker process each message once, in order.

The sweep (no `celery beat` needed): every Celery worker's main process runs a thread that, every
MESHSITE_WORKER_SWEEP_SECONDS, writes the worker's heartbeat (`CeleryWorkerBeat`, shown in the
admin) and enqueues a drain for each Worker that has had visible messages for a sweep interval
and a free slot: messages whose lease ran out because their worker was killed, retries whose
backoff ended, delayed sends. On the embedded default the web process runs the same sweep.
"""

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connections
from django.utils import timezone

from observability.tasks import background_task, enqueue

from .models import CeleryWorkerBeat
from .worker_runtime import WorkerUnavailable
from .workers import drain, pending_drains

logger = logging.getLogger(__name__)


@background_task(
    "agents.worker_drain",
    autoretry_for=(WorkerUnavailable, OperationalError, InterfaceError),
    max_retries=20,
    retry_backoff=1,
    retry_backoff_max=30,
)
def worker_drain(service_id: int, room_id: int) -> int:
    return drain(service_id, room_id)


# -- the sweep and the heartbeat --------------------------------------------------------------


def do_beat(hostname: str, started_at: Any, *, stopped: bool = False) -> None:
    now = timezone.now()
    CeleryWorkerBeat.objects.update_or_create(
        hostname=hostname,
        defaults={"pid": os.getpid(), "started_at": started_at, "beat_at": now, "stopped_at": now if stopped else None},
    )


def sweep() -> int:
    """Enqueues the drains the sweep finds due; returns how many."""
    settle = timedelta(seconds=settings.MESHSITE_WORKER_SWEEP_SECONDS)
    due = pending_drains(visible_before=timezone.now() - settle)
    for service_id, room_id in due:
        enqueue(worker_drain, service_id, room_id)
    return len(due)


class Sweeper:
    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.started_at = timezone.now()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="worker-sweep", daemon=True)

    def start(self) -> "Sweeper":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        try:
            do_beat(self.hostname, self.started_at, stopped=True)
        except DatabaseError:
            logger.exception("could not record that %s stopped", self.hostname)
        finally:
            close_old_connections()

    def _run(self) -> None:
        while True:
            try:
                do_beat(self.hostname, self.started_at)
                swept = sweep()
                if swept:
                    logger.info("sweep: %d Worker queue(s) with waiting messages", swept)
            except DatabaseError:
                logger.exception("sweep failed; retrying")
            finally:
                close_old_connections()
            if self.stopping.wait(settings.MESHSITE_WORKER_SWEEP_SECONDS):
                return


_sweeper: Sweeper | None = None


def start_sweeper(hostname: str) -> Sweeper:
    global _sweeper
    if _sweeper is None:
        _sweeper = Sweeper(hostname).start()
    return _sweeper


def stop_sweeper() -> None:
    global _sweeper
    if _sweeper is not None:
        _sweeper.stop()
        _sweeper = None


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    hostname = getattr(sender, "hostname", None) or f"celery@{socket.gethostname()}"
    start_sweeper(str(hostname))


@worker_process_init.connect
def _keep_database_connections(**kwargs: Any) -> None:
    """A pool process runs one task after another for its whole life: it keeps its database
    connection between tasks instead of opening one per task, which would cost more than a Worker's
    whole pick-up. MESHSITE_CELERY_DB_CONN_MAX_AGE seconds; 0 turns it off. No health check before
    each task (another round trip): a connection that broke fails its task with OperationalError,
    which the task decorator retries, and Django drops the broken connection."""
    for connection in connections.all():
        connection.close()  # never reuse a connection inherited from the parent
        connection.settings_dict["CONN_MAX_AGE"] = settings.MESHSITE_CELERY_DB_CONN_MAX_AGE


@worker_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **kwargs: Any) -> None:
    stop_sweeper()


def start_in_process(http_url: str) -> None:
    """The web process's share of background work when there is no broker (the embedded default,
    CELERY_TASK_ALWAYS_EAGER): Workers join this server, and this process sweeps. With a broker
    the Celery workers do both, and this does nothing."""
    from meshsite.celery import app

    from .worker_runtime import serve_locally

    serve_locally(http_url)
    if app.conf.task_always_eager:
        start_sweeper(f"in-process@{socket.gethostname()}-{os.getpid()}")
