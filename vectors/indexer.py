"""The Indexer's work: one job turns one source at one version into chunks (or removes them).

Every job is idempotent and checks, under the source's row lock right before it writes, that
what it read is still current; a job overtaken by a newer change (a later version, a delete, a
move) is `skipped` and leaves the work to the job of that change. So jobs may run in any order,
twice, or after a crash, and the store ends up matching the latest state of each source.
"""

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from files.models import StoredFile
from files.selectors import open_file
from threads.models import ThreadMessage

from .actions import do_finish_job, replace_source_chunks
from .chunking import ChunkingOptions, chunk_text
from .extraction import Unsupported, extract
from .metering import embed_for, indexer_of
from .models import DEFAULT_COLLECTION, Chunk, IndexJob, SourceKind

logger = logging.getLogger(__name__)
Status = IndexJob.Status


@dataclass
class Outcome:
    status: str
    chunks: int = 0
    detail: str = ""


def options() -> ChunkingOptions:
    return ChunkingOptions(settings.MESHSITE_CHUNK_SIZE, settings.MESHSITE_CHUNK_OVERLAP)


def message_text(parts: list[Any]) -> str:
    texts = [p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
    return "\n\n".join(t for t in texts if t)


def message_version(parts: list[Any]) -> str:
    """A message's version is its text: updates that only touch tool-call parts are no change."""
    return hashlib.sha256(message_text(parts).encode()).hexdigest()[:32]


def run_job(job: IndexJob) -> None:
    """Runs a claimed job to its end state. Errors worth a retry (the embeddings server) propagate."""
    if job.action == IndexJob.Action.REMOVE:
        outcome = remove(job)
    elif job.source_kind == SourceKind.FILE:
        outcome = index_file(job)
    else:
        outcome = index_message(job)
    do_finish_job(job, outcome.status, chunks=outcome.chunks, detail=outcome.detail)


def _live_file(job: IndexJob, *, lock: bool = False) -> StoredFile | None:
    rows = StoredFile.objects.live().in_room(job.room_id).filter(path=job.source_ref)
    return (rows.select_for_update() if lock else rows).first()


def _already_indexed(job: IndexJob) -> bool:
    chunks = Chunk.objects.filter(
        room_id=job.room_id, source_kind=job.source_kind, source_ref=job.source_ref, source_part=job.source_part
    )
    return chunks.filter(version=job.version).exists() and not chunks.exclude(version=job.version).exists()


def index_file(job: IndexJob) -> Outcome:
    stored = _live_file(job)
    if stored is None:
        return Outcome(Status.SKIPPED, detail="the file is gone (deleted or moved) since this change")
    if str(stored.version) != job.version:
        return Outcome(Status.SKIPPED, detail=f"superseded by version {stored.version}")
    if _already_indexed(job):
        return Outcome(Status.SKIPPED, detail="already indexed at this version")
    if stored.size > settings.MESHSITE_INDEX_MAX_BYTES:
        return _write(job, [], {}, detail=f"not indexed: larger than {settings.MESHSITE_INDEX_MAX_BYTES} bytes")
    with open_file(stored) as handle:
        data = handle.read()
    try:
        extracted = extract(data, stored.path, stored.content_type)
    except Unsupported as reason:
        return _write(job, [], {}, detail=f"not indexed: {reason}")
    text = extracted.text[: settings.MESHSITE_INDEX_MAX_CHARS]
    return _write(job, chunk_text(text, options()), {"path": stored.path, **extracted.metadata})


def index_message(job: IndexJob) -> Outcome:
    message = ThreadMessage.objects.filter(
        thread_id=job.source_ref, thread__room_id=job.room_id, seq=int(job.source_part)
    ).first()
    if message is None:
        return Outcome(Status.SKIPPED, detail="the message is gone")
    if message_version(message.parts) != job.version:
        return Outcome(Status.SKIPPED, detail="superseded by a later edit")
    if _already_indexed(job):
        return Outcome(Status.SKIPPED, detail="already indexed at this version")
    metadata = {"thread_id": message.thread_id, "seq": message.seq, "author": message.author_identity}
    return _write(job, chunk_text(message_text(message.parts), options()), metadata)


def _write(job: IndexJob, texts: list[str], metadata: dict[str, Any], *, detail: str = "") -> Outcome:
    """Embeds (outside any transaction: it is slow), then swaps the source's chunks if the source
    is still at the job's version."""
    model, vectors = "", []
    if texts:
        model, embedded = embed_for(
            indexer_of(job.room), texts, purpose="index", metadata={"source": f"{job.source_kind}:{job.source_ref}"}
        )
        vectors = embedded.vectors
    with transaction.atomic():
        if not _still_current(job):
            return Outcome(Status.SKIPPED, detail="superseded while indexing")
        count = replace_source_chunks(
            job.room_id,
            collection=DEFAULT_COLLECTION,
            kind=job.source_kind,
            ref=job.source_ref,
            part=job.source_part,
            version=job.version,
            texts=texts,
            vectors=vectors,
            model=model,
            metadata=[metadata] * len(texts),
        )
    if not texts:
        return Outcome(Status.SKIPPED, detail=detail or "no text to index")
    return Outcome(Status.DONE, chunks=count, detail=detail)


def _still_current(job: IndexJob) -> bool:
    """Under the source's row lock (the files and threads actions take the same one)."""
    if job.source_kind == SourceKind.FILE:
        stored = _live_file(job, lock=True)
        return stored is not None and str(stored.version) == job.version
    message = (
        ThreadMessage.objects.select_for_update()
        .filter(thread_id=job.source_ref, thread__room_id=job.room_id, seq=int(job.source_part))
        .first()
    )
    return message is not None and message_version(message.parts) == job.version


def remove(job: IndexJob) -> Outcome:
    with transaction.atomic():
        if job.source_kind == SourceKind.FILE and _live_file(job, lock=True) is not None:
            return Outcome(Status.SKIPPED, detail="the file was written again since; its new version is indexed")
        deleted, _ = Chunk.objects.filter(
            room_id=job.room_id, source_kind=job.source_kind, source_ref=job.source_ref
        ).delete()
    return Outcome(Status.DONE, chunks=deleted)
