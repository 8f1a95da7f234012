"""The Indexer's Celery task: a thin interface over vectors.indexer (STYLE.md #7, #8)."""

from observability.tasks import background_task

from .actions import claim_job, do_enqueue_job, do_finish_job
from .embeddings import EmbeddingFailed, NoEmbeddings
from .indexer import run_job
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
    """Queues the job for a posted message. A task, not part of the post: the post's answer and
    its notification do not wait for the job's row (a chat turn starts from that notification)."""
    do_enqueue_job(room_id, IndexJob.Action.INDEX, SourceKind.THREAD, thread_id, version, seq)
