"""The Indexer's Celery task: a thin interface over vectors.indexer (STYLE.md #7, #8)."""

from datetime import datetime

from observability.tasks import background_task
from threads.models import ThreadMessage

from .actions import claim_job, do_enqueue_job, do_finish_job
from .embeddings import EmbeddingFailed, NoEmbeddings
from .indexer import message_version, run_job
from .models import IndexJob, SourceKind


@background_task("vectors.run_index_job", autoretry_for=(EmbeddingFailed,), max_retries=6, retry_backoff=2)
def run_index_job(job_id: str) -> None:
    job = claim_job(job_id)
    if job is None:
        return  # finished by an earlier delivery, or gone with its room
    try:
        run_job(job)
    except NoEmbeddings as error:
        # permanent until an operator installs or configures a backend: say so on the job
        do_finish_job(job, IndexJob.Status.FAILED, detail=str(error))


@background_task("vectors.index_message")
def index_message(room_id: int, thread_id: str, version: str, seq: str) -> None:
    """Queues the job for one message. Kept for messages queued by an earlier version, which
    sent one task per message; vectors.index_thread does this now, a batch at a time."""
    do_enqueue_job(room_id, IndexJob.Action.INDEX, SourceKind.THREAD, thread_id, version, seq)


@background_task("vectors.index_thread")
def index_thread(room_id: int, thread_id: str, since: str) -> None:
    """Queues the jobs for a thread's messages saved at or after `since` (ISO 8601), a batch
    that vectors.signals collects for MESHSITE_INDEX_THREAD_DELAY seconds. A task, not part of
    the posts: their answers and notifications (a chat turn starts from one) never wait for it;
    and one per period, so a thread's turns do not share the server with a job per message.
    A message already queued at its version is not queued again."""
    messages = ThreadMessage.objects.filter(
        thread_id=thread_id, thread__room_id=room_id, updated_at__gte=datetime.fromisoformat(since)
    ).order_by("seq")
    versions = {str(seq): message_version(parts) for seq, parts in messages.values_list("seq", "parts")}
    # batches overlap (vectors.signals.BATCH_OVERLAP): skip what an earlier one queued in one query
    # rather than by a refused insert per message (do_enqueue_job would refuse it all the same)
    queued = set(
        IndexJob.objects.filter(
            room_id=room_id,
            action=IndexJob.Action.INDEX,
            source_kind=SourceKind.THREAD,
            source_ref=thread_id,
            source_part__in=list(versions),
        ).values_list("source_part", "version")
    )
    for part, version in versions.items():
        if (part, version) not in queued:
            do_enqueue_job(room_id, IndexJob.Action.INDEX, SourceKind.THREAD, thread_id, version, part)
