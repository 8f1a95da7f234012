"""Reads of the vector store and the Indexer's state (the `vectors.status` tool, Studio, admin)."""

from typing import Any, cast

from django.db.models import Count

from rooms.grants import Grants

from .access import may_read_chunk
from .actions import PENDING, job_record
from .embeddings import NoEmbeddings, get_embedder
from .models import Chunk, IndexJob

SCAN_FACTOR = 10


def index_status(room_id: int, grants: Any, limit: int = 20) -> dict[str, Any]:
    """Counts for the room (no paths in them), and the latest jobs on sources `grants` may read."""
    try:
        embedder = get_embedder()
        model, problem = embedder.model, None
    except NoEmbeddings as error:
        model, problem = None, str(error)
    by_kind = dict(
        Chunk.objects.filter(room_id=room_id)
        .values_list("source_kind")
        .annotate(n=Count("id"))
        .values_list("source_kind", "n")
    )
    jobs = IndexJob.objects.filter(room_id=room_id)
    granted = cast(Grants, grants)
    recent = [
        job_record(job)
        for job in jobs.order_by("-updated_at")[: limit * SCAN_FACTOR]
        if may_read_chunk(granted, job.source_kind, job.source_ref)
    ][:limit]
    return {
        "model": model,
        "problem": problem,
        "chunks": {kind: by_kind.get(kind, 0) for kind in ("file", "thread", "custom")},
        "pending": jobs.filter(status__in=PENDING).count(),
        "failed": jobs.filter(status=IndexJob.Status.FAILED).count(),
        "jobs": recent,
    }
