"""On Postgres the search uses the HNSW index (the plan says so), `ef_search` is applied in the
search's transaction, and HNSW agrees with exact search on a well-separated set."""

import random

import pytest
from django.db import connection, transaction

from rooms.models import Room
from tests.support.services import require
from vectors.models import Chunk, SourceKind
from vectors.search import Filters, Query, postgres_sql, search

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
DIMS = 384
MODEL = "test-model"


def random_unit(rng: random.Random) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(DIMS)]
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


def fill(room: Room, count: int, seed: int = 7) -> list[list[float]]:
    rng = random.Random(seed)
    vectors = [random_unit(rng) for _ in range(count)]
    Chunk.objects.bulk_create(
        Chunk(
            room=room,
            source_kind=SourceKind.CUSTOM,
            source_ref=f"doc-{n // 10}",
            ordinal=n % 10,
            text=f"chunk {n}",
            model=MODEL,
            dims=DIMS,
            embedding=vector,
        )
        for n, vector in enumerate(vectors)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE vectors_chunk")
    return vectors


def plan(query: Query) -> str:
    sql, params = postgres_sql(query, query.k)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = 40")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_search_plan_uses_the_hnsw_index(room):
    require("postgres")
    vectors = fill(room, 3000)
    query = Query(room_id=room.pk, model=MODEL, vector=vectors[0], k=5, filters=Filters(collection="room"))
    text = plan(query)
    assert "vectors_chunk_hnsw_384" in text, text
    # and with a grant prefilter the index is still the way in
    grants = {SourceKind.FILE: ["^users/bob/.*$"], SourceKind.THREAD: []}
    text = plan(Query(room_id=room.pk, model=MODEL, vector=vectors[0], k=5, patterns=grants))
    assert "vectors_chunk_hnsw_384" in text, text


def test_ef_search_is_set_for_the_search_only(room):
    require("postgres")
    vectors = fill(room, 300)
    hits = search(Query(room_id=room.pk, model=MODEL, vector=vectors[42], k=3, ef_search=123))
    assert hits[0].text == "chunk 42" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == "40"  # SET LOCAL ended with the search's transaction


def test_hnsw_finds_what_exact_search_finds(room):
    require("postgres")
    vectors = fill(room, 2000)
    agree = 0
    for n in range(0, 2000, 100):
        query = dict(room_id=room.pk, model=MODEL, vector=vectors[n], k=5)
        exact = [hit.chunk_id for hit in search(Query(**query, exact=True))]
        approximate = [hit.chunk_id for hit in search(Query(**query, ef_search=100))]
        agree += len(set(exact) & set(approximate))
    assert agree / (20 * 5) >= 0.9
