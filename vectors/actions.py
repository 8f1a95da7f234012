"""Writes to the vector store and the Indexer's job table. Each emits its room event after commit.

Progress events (`vectors.progress`) go only to participants who may read the source they name
(the storage path or the thread), like the `storage` and `threads` events themselves.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from observability.tasks import enqueue_on_commit
from rooms.events import send_room_event_on_commit

from .models import Chunk, IndexJob, SourceKind

PROGRESS_EVENT = "vectors.progress"
PENDING = (IndexJob.Status.QUEUED, IndexJob.Status.RUNNING)


def audience(kind: str, ref: str) -> dict[str, Any]:
    if kind == SourceKind.FILE:
        return {"readers_of": ["storage", [ref]]}
    if kind == SourceKind.THREAD:
        return {"readers_of": ["threads", [ref]]}
    return {}


def job_record(job: IndexJob) -> dict[str, Any]:
    tail = f"#{job.source_part}" if job.source_part else ""
    return {
        "job_id": job.pk,
        "action": job.action,
        "source": f"{job.source_kind}:{job.source_ref}{tail}",
        "version": job.version,
        "status": job.status,
        "chunks": job.chunks,
        "detail": job.detail,
        "attempts": job.attempts,
        "updated_at": job.updated_at.isoformat() if job.updated_at else None,
    }


def _progress(job: IndexJob) -> None:
    pending = IndexJob.objects.filter(room_id=job.room_id, status__in=PENDING).count()
    params = {**job_record(job), "pending": pending}
    send_room_event_on_commit(job.room_id, PROGRESS_EVENT, params, **audience(job.source_kind, job.source_ref))


@transaction.atomic
def do_enqueue_job(room_id: int, action: str, kind: str, ref: str, version: str, part: str = "") -> IndexJob | None:
    """Queues one job unless the same (source, version, action) was queued before: the same
    change seen twice is indexed once. Returns the new job, or None."""
    from .tasks import run_index_job

    try:
        with transaction.atomic():
            job = IndexJob.objects.create(
                room_id=room_id, action=action, source_kind=kind, source_ref=ref, source_part=part, version=version
            )
    except IntegrityError:
        return None
    enqueue_on_commit(run_index_job, job.pk)
    _progress(job)
    return job


def claim_job(job_id: str) -> IndexJob | None:
    """Takes a queued job (or one whose worker died mid-run: delivery is at least once, and the
    work is idempotent). None when it is finished or gone."""
    claimed = IndexJob.objects.filter(pk=job_id, status__in=PENDING).update(
        status=IndexJob.Status.RUNNING, attempts=F("attempts") + 1
    )
    return IndexJob.objects.select_related("room").filter(pk=job_id).first() if claimed else None


@transaction.atomic
def do_finish_job(job: IndexJob, status: str, *, chunks: int = 0, detail: str = "") -> None:
    job.status, job.chunks, job.detail = status, chunks, detail[:2000]
    job.save(update_fields=["status", "chunks", "detail", "updated_at"])
    _progress(job)


def replace_source_chunks(
    room_id: int,
    *,
    collection: str,
    kind: str,
    ref: str,
    part: str,
    version: str,
    texts: list[str],
    vectors: list[list[float]],
    model: str,
    metadata: list[dict[str, Any]],
) -> int:
    """Replaces every chunk of one source (of one part, for thread messages) with these.
    Precondition: inside the caller's transaction, which has checked the source is current."""
    Chunk.objects.filter(room_id=room_id, source_kind=kind, source_ref=ref, source_part=part).delete()
    Chunk.objects.bulk_create(
        Chunk(
            room_id=room_id,
            collection=collection,
            source_kind=kind,
            source_ref=ref,
            source_part=part,
            version=version,
            ordinal=ordinal,
            text=text,
            metadata=meta,
            model=model,
            dims=len(vector),
            embedding=vector,
        )
        for ordinal, (text, vector, meta) in enumerate(zip(texts, vectors, metadata, strict=True))
    )
    return len(texts)


@transaction.atomic
def do_upsert_chunks(
    room_id: int,
    collection: str,
    source: str,
    items: list[dict[str, Any]],
    vectors: list[list[float]],
    model: str,
) -> int:
    """The `vectors.upsert` write: a custom source's chunks replaced by `items` (text, metadata)."""
    return replace_source_chunks(
        room_id,
        collection=collection,
        kind=SourceKind.CUSTOM,
        ref=source,
        part="",
        version="",
        texts=[item["text"] for item in items],
        vectors=vectors,
        model=model,
        metadata=[item.get("metadata", {}) for item in items],
    )


@transaction.atomic
def do_delete_source(room_id: int, kind: str, ref: str, *, collection: str | None = None) -> int:
    chunks = Chunk.objects.filter(room_id=room_id, source_kind=kind, source_ref=ref)
    if collection is not None:
        chunks = chunks.filter(collection=collection)
    deleted, _ = chunks.delete()
    return deleted


@transaction.atomic
def do_move_file_chunks(room_id: int, previous_path: str, path: str, version: str) -> int:
    """A moved file keeps its chunks (no re-embedding): they now name the new path and version,
    replacing whatever the destination had."""
    Chunk.objects.filter(room_id=room_id, source_kind=SourceKind.FILE, source_ref=path).delete()
    return Chunk.objects.filter(room_id=room_id, source_kind=SourceKind.FILE, source_ref=previous_path).update(
        source_ref=path, version=version
    )
