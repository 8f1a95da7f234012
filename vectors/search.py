"""Nearest-neighbour search over a room's chunks: pgvector HNSW on Postgres, exact elsewhere.

Both backends take a `Query` and return `Hit`s, best first, with `score` = cosine similarity.

Postgres: one partial expression HNSW index per common dimension (`INDEXED_DIMS`, created by
migrations/0001), used through `ORDER BY embedding::vector(d) <=> query LIMIT n` with `dims = d`
in the WHERE clause. `hnsw.ef_search` is set per search with SET LOCAL inside the search's
transaction, and `hnsw.iterative_scan = strict_order` lets the index scan go on past ef_search
candidates while the room, model and grant filters reject rows, so filtering does not starve the
top-k. `exact=True` disables index scans (the baseline of bench/rag.py).

SQLite (and dimensions without an index): every candidate row's vector is compared in Python
(numpy when installed), after the same filters.
"""

import heapq
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from .models import Chunk

INDEXED_DIMS = (384, 768, 1024, 1536)
Readable = Callable[[str, str], bool]


@dataclass(frozen=True)
class Filters:
    collection: str | None = None
    source_kind: str | None = None
    source_prefix: str | None = None  # of source_ref: a folder of paths, one thread
    metadata: dict[str, Any] = field(default_factory=dict)  # equality on top-level keys


@dataclass(frozen=True)
class Query:
    room_id: int
    model: str
    vector: list[float]
    k: int = 5
    filters: Filters = Filters()
    readable: Readable | None = None  # the exact grant check, None: everything
    patterns: dict[str, list[str]] | None = None  # from access.sql_patterns; None: no SQL prefilter
    ef_search: int | None = None
    exact: bool = False


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float
    collection: str
    source_kind: str
    source_ref: str
    source_part: str
    version: str
    ordinal: int
    text: str
    metadata: dict[str, Any]

    @property
    def source(self) -> str:
        tail = f"#{self.source_part}" if self.source_part else ""
        return f"{self.source_kind}:{self.source_ref}{tail}"

    def to_record(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "score": round(self.score, 6),
            "source": self.source,
            "source_kind": self.source_kind,
            "source_ref": self.source_ref,
            "version": self.version,
            "ordinal": self.ordinal,
            "collection": self.collection,
            "text": self.text,
            "metadata": self.metadata,
        }


def search(query: Query) -> list[Hit]:
    if connection.vendor == "postgresql":
        return _search_postgres(query)
    return _search_exact(query)


# --- Postgres ---------------------------------------------------------------------------------

COLUMNS = "id, collection, source_kind, source_ref, source_part, version, ordinal, text, metadata"


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def postgres_sql(query: Query, limit: int) -> tuple[str, list[Any]]:
    """The search statement and its parameters (also what the EXPLAIN test runs)."""
    dims = len(query.vector)
    literal = "[" + ",".join(repr(float(v)) for v in query.vector) + "]"
    if dims in INDEXED_DIMS:
        distance = f"(embedding::vector({dims}) <=> %s::vector({dims}))"
    else:
        distance = "(embedding <=> %s::vector)"
    where = ["dims = %s", "room_id = %s", "model = %s"]
    params: list[Any] = [dims, query.room_id, query.model]
    filters = query.filters
    if filters.collection is not None:
        where.append("collection = %s")
        params.append(filters.collection)
    if filters.source_kind is not None:
        where.append("source_kind = %s")
        params.append(filters.source_kind)
    if filters.source_prefix:
        where.append("source_ref LIKE %s")
        params.append(_like_prefix(filters.source_prefix))
    if filters.metadata:
        where.append("metadata @> %s::jsonb")
        params.append(json.dumps(filters.metadata))
    if query.patterns is not None:
        allowed = ["source_kind = 'custom'"]
        for kind, regexes in query.patterns.items():
            if regexes:
                allowed.append("(source_kind = %s AND source_ref ~ ANY(%s))")
                params += [kind, regexes]
        where.append("(" + " OR ".join(allowed) + ")")
    sql = (
        f"SELECT {COLUMNS}, {distance} AS distance FROM vectors_chunk WHERE {' AND '.join(where)} "
        f"ORDER BY {distance} LIMIT %s"
    )
    return sql, [literal, *params, literal, limit]


def session_settings(ef_search: int | None, *, exact: bool = False) -> str:
    """The SET LOCAL statements of one search, sent in one round trip."""
    ef = int(ef_search or settings.MESHSITE_HNSW_EF_SEARCH)
    statements = [f"SET LOCAL hnsw.ef_search = {ef}", "SET LOCAL hnsw.iterative_scan = strict_order"]
    if exact:
        statements.append("SET LOCAL enable_indexscan = off")
    return "; ".join(statements)


def _search_postgres(query: Query) -> list[Hit]:
    limit = max(query.k * 2, query.k + 10) if query.readable else query.k
    while True:
        sql, params = postgres_sql(query, limit)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(session_settings(query.ef_search, exact=query.exact))
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        hits = [_hit(row[:9], 1.0 - float(row[9])) for row in rows]
        if query.readable is not None:
            readable = query.readable
            hits = [hit for hit in hits if readable(hit.source_kind, hit.source_ref)]
        # fewer rows than asked: there are no more; else the exact check dropped some, fetch more
        if len(hits) >= query.k or len(rows) < limit:
            return hits[: query.k]
        limit *= 4


def _hit(row: Iterable[Any], score: float) -> Hit:
    chunk_id, collection, kind, ref, part, version, ordinal, text, metadata = row
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return Hit(chunk_id, score, collection, kind, ref, part, version, ordinal, text, metadata or {})


# --- exact, in Python -------------------------------------------------------------------------


def _matches_metadata(metadata: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in metadata and metadata[key] == value for key, value in wanted.items())


def _scores(vectors: list[list[float]], query: list[float]) -> list[float]:
    try:
        import numpy
    except ImportError:
        norm = math.sqrt(sum(v * v for v in query)) or 1.0
        return [sum(a * b for a, b in zip(row, query, strict=True)) / norm for row in vectors]
    matrix = numpy.asarray(vectors, dtype=numpy.float32)
    target = numpy.asarray(query, dtype=numpy.float32)
    target /= numpy.linalg.norm(target) or 1.0
    return [float(score) for score in matrix @ target]


def _search_exact(query: Query) -> list[Hit]:
    filters = query.filters
    rows = Chunk.objects.filter(room_id=query.room_id, model=query.model, dims=len(query.vector))
    if filters.collection is not None:
        rows = rows.filter(collection=filters.collection)
    if filters.source_kind is not None:
        rows = rows.filter(source_kind=filters.source_kind)
    if filters.source_prefix:
        rows = rows.filter(source_ref__startswith=filters.source_prefix)
    candidates = [
        chunk
        for chunk in rows.only(*COLUMNS.split(", "), "embedding").iterator(chunk_size=2000)
        if (query.readable is None or query.readable(chunk.source_kind, chunk.source_ref))
        and _matches_metadata(chunk.metadata, filters.metadata)
    ]
    if not candidates:
        return []
    scores = _scores([chunk.embedding for chunk in candidates], query.vector)
    best = heapq.nlargest(query.k, range(len(candidates)), key=scores.__getitem__)
    return [
        Hit(
            c.pk,
            scores[i],
            c.collection,
            c.source_kind,
            c.source_ref,
            c.source_part,
            c.version,
            c.ordinal,
            c.text,
            c.metadata,
        )
        for i in best
        for c in (candidates[i],)
    ]
