"""Embedding with its usage in the ledger: every embedding call is one `embedding` usage record,
attributed to whoever caused it (the Indexer for a room's content; the caller for a query or an
upsert, and the tool call that embedded it)."""

from typing import Any

from observability.budgets import Who
from observability.pricing import Amounts
from observability.usage import SpentBy, record_usage
from rooms.models import Room

from .embeddings import Embedded, get_embedder

INDEXER_IDENTITY = "indexer"


def indexer_of(room: Room) -> Who:
    return Who(room.project_id, room.pk, room.name, "", INDEXER_IDENTITY, INDEXER_IDENTITY)


def embed(texts: list[str]) -> tuple[str, str, Embedded]:
    """Embeds `texts` (no database access: callable off the database thread). Returns the
    backend's name, the model and the vectors. Raises NoEmbeddings or EmbeddingFailed."""
    embedder = get_embedder()
    return embedder.name, embedder.model, embedder.embed(texts)


def record_embedding(
    who: Who,
    texts: list[str],
    backend: str,
    model: str,
    embedded: Embedded,
    *,
    purpose: str,
    metadata: dict[str, Any] | None = None,
    by: SpentBy | None = None,
) -> None:
    record_usage(
        who,
        kind="embedding",
        model=model,
        amounts=Amounts(input_tokens=embedded.tokens),
        metadata={
            "purpose": purpose,
            "backend": backend,
            "texts": len(texts),
            "characters": sum(len(text) for text in texts),
            **(metadata or {}),
        },
        by=by,
    )


def embed_for(
    who: Who, texts: list[str], *, purpose: str, metadata: dict[str, Any] | None = None
) -> tuple[str, Embedded]:
    """Embeds `texts` and records the usage; returns the model name and the vectors."""
    backend, model, embedded = embed(texts)
    record_embedding(who, texts, backend, model, embedded, purpose=purpose, metadata=metadata)
    return model, embedded
