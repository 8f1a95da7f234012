"""RAG benchmark: retrieval quality and speed of the room vector store on Postgres + pgvector,
with the local embedding model, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meshsite_bench_rag .venv/bin/python bench/rag.py \
        [--chunks 10000] [--high-ef 800] [--throughput-chunks 2000] [--latency-queries 500]

Needs `make install-embeddings` (the local model) and a Postgres server with pgvector; the
database in DATABASE_URL (default: meshsite_bench_rag on 127.0.0.1) is dropped and re-created
and migrated, so its HNSW indexes are the ones the project's migration builds.

1. Indexing throughput: --throughput-chunks chunks of the store embedded by the local model on the
   CPU in batches of MESHSITE_EMBEDDING_BATCH, model warm: chunks per second. The whole store's
   embeddings are then taken from var/bench-rag-vectors.json when it holds exactly these texts
   (else embedded and saved): the corpus is deterministic, and 10k chunks take minutes.
2. Recall@5 on the 50 labelled questions (bench/data/rag): exact search (index scans off: a
   sequential scan and sort) against HNSW at pgvector's own default ef_search (40), at the
   server's default (MESHSITE_HNSW_EF_SEARCH, 300) and at --high-ef; first on the labelled set
   alone (208 chunks; the planner scans it exactly whatever ef_search says, as it should for a
   store that small), then on the full store (labelled + distractors of the same kinds, 10,000).
   Recall@5 of a question = relevant chunks in the top 5 / relevant chunks; the mean is printed.
   HNSW is measured with the planner's alternatives switched off (so the index is what answers,
   as the printed plan shows); the plan the server's own search gets is printed too.
3. Search latency p50/p99 of the same SQL at the full store size, HNSW against exact, through
   the database connection (the query's embedding is timed separately).

Each mode's plan is checked with EXPLAIN and printed next to its figure.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "data" / "rag")]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/meshsite_bench_rag"
MODEL = "all-MiniLM-L6-v2"
K = 5


def prepare_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshsite.settings.local")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def embed_all(texts: list[str], batch: int) -> tuple[list[list[float]], float]:
    from vectors.embeddings import get_embedder

    embedder = get_embedder()
    embedder.embed(texts[:batch])  # warm: the model is loaded and its first batch done
    started = time.perf_counter()
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch):
        vectors += embedder.embed(texts[start : start + batch]).vectors
    return vectors, time.perf_counter() - started


def cached_vectors(texts: list[str], batch: int) -> list[list[float]]:
    """The corpus' embeddings, from var/bench-rag-vectors.json when it holds these very texts (the
    corpus and model are deterministic; embedding 10k chunks takes minutes on a busy CPU)."""
    import hashlib
    import json

    key = hashlib.sha256(("\n".join(texts) + MODEL).encode()).hexdigest()
    cache = ROOT / "var" / "bench-rag-vectors.json"
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return list(saved["vectors"])
    vectors, _ = embed_all(texts, batch)
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({"key": key, "vectors": vectors}))
    return vectors


def store(room_id: int, chunks: list[Any], vectors: list[list[float]]) -> dict[int, str]:
    """Writes the chunks; returns database id -> corpus id."""
    from django.db import connection

    from vectors.models import Chunk, SourceKind

    rows = Chunk.objects.bulk_create(
        Chunk(
            room_id=room_id,
            source_kind=SourceKind.CUSTOM,
            source_ref=chunk.document,
            ordinal=0,
            text=chunk.text,
            metadata={"id": chunk.id},
            model=MODEL,
            dims=len(vector),
            embedding=vector,
        )
        for chunk, vector in zip(chunks, vectors, strict=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE vectors_chunk")
    return {row.pk: chunk.id for row, chunk in zip(rows, chunks, strict=True)}


def run_query(room_id: int, vector: list[float], mode: str, ef: int, explain: bool = False) -> list[Any]:
    from django.db import connection, transaction

    from vectors.search import Query, postgres_sql, session_settings

    sql, params = postgres_sql(Query(room_id=room_id, model=MODEL, vector=vector, k=K), K)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(session_settings(ef, exact=mode == "exact"))
        if mode == "hnsw":
            # measure the index itself: the planner would scan small stores (and large ef_search)
            # exactly, which is right for serving but says nothing about HNSW's recall
            cursor.execute(
                "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"
            )
        cursor.execute(("EXPLAIN " if explain else "") + sql, params)
        return cursor.fetchall()


def plan_of(room_id: int, vector: list[float], mode: str, ef: int) -> str:
    lines = [row[0] for row in run_query(room_id, vector, mode, ef, explain=True)]
    scans = [line.strip() for line in lines if "Scan" in line]
    return scans[0] if scans else lines[0]


def recall(
    room_id: int, questions: list[Any], vectors: list[list[float]], ids: dict[int, str], mode: str, ef: int
) -> float:
    scores = []
    for question, vector in zip(questions, vectors, strict=True):
        found = {ids[row[0]] for row in run_query(room_id, vector, mode, ef)}
        scores.append(len(found & set(question.relevant)) / len(question.relevant))
    return sum(scores) / len(scores)


def latencies(room_id: int, vectors: list[list[float]], mode: str, ef: int, count: int) -> list[float]:
    samples = []
    for n in range(count):
        started = time.perf_counter()
        run_query(room_id, vectors[n % len(vectors)], mode, ef)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000, help="size of the full store")
    parser.add_argument("--high-ef", type=int, default=800)
    parser.add_argument("--throughput-chunks", type=int, default=2000, help="chunks embedded for the throughput figure")
    parser.add_argument("--latency-queries", type=int, default=500)
    args = parser.parse_args()
    prepare_database(os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_URL)

    import corpus
    from django.conf import settings

    from rooms.actions.projects import do_create_project
    from rooms.actions.rooms import do_create_room

    print(f"load at start: {uptime()}")
    room = do_create_room(do_create_project("bench", "Bench"), "rag")
    labelled, questions = corpus.labelled()
    extra = corpus.distractors(max(0, args.chunks - len(labelled)))
    batch = settings.MESHSITE_EMBEDDING_BATCH
    print(f"labelled set: {len(labelled)} chunks, {len(questions)} questions; distractors: {len(extra)}")

    texts = [c.text for c in labelled + extra]
    measured = texts[: args.throughput_chunks]
    _, seconds = embed_all(measured, batch)
    print(
        f"\nindexing throughput (local model {MODEL}, CPU, batch {batch}): {len(measured)} chunks in "
        f"{seconds:.1f}s = {len(measured) / seconds:.1f} chunks/s"
    )
    vectors = cached_vectors(texts, batch)
    from vectors.embeddings import get_embedder

    question_vectors, q_seconds = embed_all([q.question for q in questions] * 2, 1)
    print(f"query embedding (one at a time): {q_seconds / (2 * len(questions)) * 1000:.1f} ms per query")
    question_vectors = question_vectors[: len(questions)]
    assert get_embedder().model == MODEL

    ids = store(room.pk, labelled, vectors[: len(labelled)])
    high, default = args.high_ef, settings.MESHSITE_HNSW_EF_SEARCH
    modes = [("exact", default), ("hnsw", 40), ("hnsw", default), ("hnsw", high)]
    results: dict[str, dict[str, float]] = {}
    for stage in ("labelled", "full"):
        if stage == "full":
            started = time.perf_counter()
            ids |= store(room.pk, extra, vectors[len(labelled) :])
            print(f"\nwrote {len(extra)} more chunks (HNSW index maintained) in {time.perf_counter() - started:.1f}s")
        print(f"\n== recall@{K}, store of {len(ids)} chunks")
        for mode, ef in modes:
            label = "exact" if mode == "exact" else f"hnsw ef_search={ef}"
            value = recall(room.pk, questions, question_vectors, ids, mode, ef)
            results.setdefault(stage, {})[label] = value
            print(f"  {label:22} recall@{K} = {value:.3f}   plan: {plan_of(room.pk, question_vectors[0], mode, ef)}")
        exact = results[stage]["exact"]
        served = recall(room.pk, questions, question_vectors, ids, "served", default)
        print(
            f"  {'as served (planner)':22} recall@{K} = {served:.3f}   plan: "
            f"{plan_of(room.pk, question_vectors[0], 'served', default)}"
        )
        ratio = results[stage][f"hnsw ef_search={default}"] / exact
        print(f"  HNSW at the default ef_search ({default}) / exact = {ratio:.3f} (target >= 0.95)")

    print(f"\n== search latency at {len(ids)} chunks, {args.latency_queries} queries per mode (ms)")
    for mode, ef in [("hnsw", 40), ("hnsw", default), ("hnsw", high), ("exact", default), ("served", default)]:
        latencies(room.pk, question_vectors, mode, ef, 20)  # warm
        samples = latencies(room.pk, question_vectors, mode, ef, args.latency_queries)
        label = {"exact": "exact", "served": "as served (planner)"}.get(mode, f"hnsw ef_search={ef}")
        print(
            f"  {label:22} p50 {percentile(samples, 0.5):7.2f}  p99 {percentile(samples, 0.99):7.2f}  "
            f"mean {statistics.mean(samples):7.2f}"
        )
    print(f"\nload at end: {uptime()}")


if __name__ == "__main__":
    main()
