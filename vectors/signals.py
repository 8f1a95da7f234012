"""The Indexer's watch: storage changes (files.signals.file_changed, sent after commit) and thread
messages (Django's model signals, on commit), turned into jobs. Nothing is queued while no
embedding backend is available (the vectors.W001 check says so at start-up), nor when
MESHSITE_INDEXER is off."""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from files.signals import file_changed
from observability.tasks import enqueue_on_commit
from threads.models import Thread, ThreadMessage

from .actions import do_delete_source, do_enqueue_job, do_move_file_chunks
from .embeddings import configured_model
from .indexer import message_version
from .models import IndexJob, SourceKind
from .tasks import index_message

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


@receiver(post_save, sender=ThreadMessage, dispatch_uid="vectors.message_saved")
def on_message_saved(*, instance: ThreadMessage, **_: Any) -> None:
    if not watching():
        return
    version = message_version(instance.parts)
    enqueue_on_commit(index_message, instance.thread.room_id, instance.thread_id, version, str(instance.seq))


@receiver(post_delete, sender=Thread, dispatch_uid="vectors.thread_deleted")
def on_thread_deleted(*, instance: Thread, **_: Any) -> None:
    room_id, thread_id = instance.room_id, instance.pk
    transaction.on_commit(lambda: do_delete_source(room_id, SourceKind.THREAD, thread_id))
