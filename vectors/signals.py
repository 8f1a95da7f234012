"""The Indexer's watch: storage changes (files.signals.file_changed, sent after commit) and thread
messages (Django's model signals, on commit), turned into jobs. Nothing is queued while no
embedding backend is available (the vectors.W001 check says so at start-up), nor when
MESHSITE_INDEXER is off.

A thread's messages are collected per thread: the first one saved schedules vectors.index_thread
MESHSITE_INDEX_THREAD_DELAY seconds later, and the messages saved until then are its batch (the
task reads them by time, `updated_at`, so it finds them in whichever process it runs)."""

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from files.signals import file_changed
from observability.tasks import enqueue
from threads.models import Thread, ThreadMessage

from .actions import do_delete_source, do_enqueue_job, do_move_file_chunks
from .embeddings import configured_model
from .models import IndexJob, SourceKind
from .tasks import index_thread

INDEX, REMOVE = IndexJob.Action.INDEX, IndexJob.Action.REMOVE


def watching() -> bool:
    return bool(settings.MESHSITE_INDEXER) and configured_model() is not None


@receiver(file_changed, dispatch_uid="vectors.file_changed")
def on_file_changed(
    *, room: Any, path: str, action: str, version: int, previous_path: str | None = None, **_: Any
) -> None:
    if not watching():
        return
    if action == "deleted":
        do_enqueue_job(room.pk, REMOVE, SourceKind.FILE, path, str(version))
        return
    if action == "moved" and previous_path:
        do_move_file_chunks(room.pk, previous_path, path, str(version))
    do_enqueue_job(room.pk, INDEX, SourceKind.FILE, path, str(version))


# A change saved before an earlier one committed is in that one's batch all the same: the batch
# reaches back this far before its first message (queuing a message twice is a no-op).
BATCH_OVERLAP = timedelta(seconds=1)
# thread id -> (monotonic) time its batch was scheduled; the batch is open until its task runs
_batches: dict[str, float] = {}
_batches_lock = threading.Lock()


@receiver(post_save, sender=ThreadMessage, dispatch_uid="vectors.message_saved")
def on_message_saved(*, instance: ThreadMessage, **_: Any) -> None:
    if not watching():
        return
    room_id, thread_id, saved_at = instance.thread.room_id, instance.thread_id, instance.updated_at
    transaction.on_commit(lambda: collect_message(room_id, thread_id, saved_at))


def collect_message(room_id: int, thread_id: str, saved_at: datetime) -> None:
    """Puts a committed message in its thread's open batch, or opens one: schedules the batch's
    task. A batch is open until its task starts (after the delay), so the task sees every message
    it holds: each committed before it was counted in."""
    delay = settings.MESHSITE_INDEX_THREAD_DELAY
    now = time.monotonic()
    with _batches_lock:
        opened = _batches.get(thread_id)
        if opened is not None and now < opened + delay:
            return
        for closed in [t for t, at in _batches.items() if now >= at + delay]:
            del _batches[closed]
        _batches[thread_id] = now
    enqueue(index_thread, room_id, thread_id, (saved_at - BATCH_OVERLAP).isoformat(), countdown=delay or None)


@receiver(post_delete, sender=Thread, dispatch_uid="vectors.thread_deleted")
def on_thread_deleted(*, instance: Thread, **_: Any) -> None:
    room_id, thread_id = instance.room_id, instance.pk
    transaction.on_commit(lambda: do_delete_source(room_id, SourceKind.THREAD, thread_id))
