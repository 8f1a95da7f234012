"""Embedding backends: an OpenAI-compatible server through the openai client (usage priced in the
ledger), the local model, and a clear message when there is neither."""

import os
import signal
from decimal import Decimal

import pytest

from observability.models import UsageRecord
from rooms.models import Room
from tests.support.fake_openai import ErrorReply
from tests.vectors.conftest import require_local_model
from tests.vectors.fake_embeddings import DIMS, FakeEmbeddings, fake_embeddings
from vectors import embeddings
from vectors.actions import do_upsert_chunks
from vectors.checks import embeddings_available
from vectors.embeddings import EmbeddingFailed, NoEmbeddings, get_embedder
from vectors.metering import embed_for, indexer_of
from vectors.search import Query, search

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["fake_embeddings"]


@pytest.fixture
def openai_backend(settings, fake_embeddings: FakeEmbeddings):
    settings.MESHSITE_EMBEDDINGS = "openai"
    settings.MESHSITE_EMBEDDING_BASE_URL = fake_embeddings.base_url
    settings.MESHSITE_EMBEDDING_API_KEY = "sk-embed"
    settings.MESHSITE_EMBEDDING_BATCH = 2
    get_embedder.cache_clear()
    yield fake_embeddings
    get_embedder.cache_clear()


def test_openai_embeddings_are_batched_normalised_and_priced(room: Room, openai_backend):
    model, embedded = embed_for(indexer_of(room), ["red apples", "green apples", "blue sky"], purpose="index")
    assert model == "text-embedding-3-small" and len(embedded.vectors) == 3 and len(embedded.vectors[0]) == DIMS
    assert all(abs(sum(v * v for v in vector) - 1) < 1e-6 for vector in embedded.vectors)
    assert [r.body["input"] for r in openai_backend.requests] == [["red apples", "green apples"], ["blue sky"]]
    record = UsageRecord.objects.get(room=room, kind="embedding")
    assert (record.model, record.input_tokens, record.agent, record.priced) == (
        "text-embedding-3-small",
        6,
        "indexer",
        True,
    )
    assert record.cost == Decimal("0.02") * 6 / 1_000_000  # the seeded list price, per million tokens
    assert record.metadata["purpose"] == "index" and record.metadata["backend"] == "openai"


def test_a_store_on_openai_embeddings_searches_like_any_other(room: Room, openai_backend):
    texts = ["red apples grow on trees", "the sky is blue today", "invoices are due monthly"]
    embedder = get_embedder()
    do_upsert_chunks(
        room.pk, "room", "notes", [{"text": t} for t in texts], embedder.embed(texts).vectors, embedder.model
    )
    hits = search(Query(room_id=room.pk, model=embedder.model, vector=embedder.embed(["blue sky"]).vectors[0], k=1))
    assert hits[0].text == "the sky is blue today"


def test_server_errors_are_retryable_and_refusals_are_not(openai_backend):
    openai_backend.script(ErrorReply(503, "overloaded"), ErrorReply(503, "overloaded"), ErrorReply(503, "overloaded"))
    with pytest.raises(EmbeddingFailed):
        get_embedder().embed(["text"])
    openai_backend.script(ErrorReply(400, "input too long"))
    with pytest.raises(NoEmbeddings, match="input too long"):
        get_embedder().embed(["text"])


def test_without_a_backend_it_says_what_to_install_or_set(settings, monkeypatch):
    settings.MESHSITE_EMBEDDINGS = ""
    monkeypatch.setattr(embeddings, "local_model_installed", lambda: False)
    get_embedder.cache_clear()
    try:
        with pytest.raises(NoEmbeddings, match="make install-embeddings") as raised:
            get_embedder()
        assert "MESHSITE_EMBEDDINGS=openai" in str(raised.value)
        (warning,) = embeddings_available()
        assert warning.id == "vectors.W001" and "make install-embeddings" in warning.msg
    finally:
        get_embedder.cache_clear()


def test_the_local_model_embeds_offline_and_is_free(room: Room):
    model, embedded = embed_for(indexer_of(room), ["a cat", "a kitten", "a tax return"], purpose="index")
    assert model == "all-MiniLM-L6-v2" and len(embedded.vectors[0]) == 384
    cat, kitten, tax = embedded.vectors
    similarity = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert similarity(cat, kitten) > similarity(cat, tax)
    record = UsageRecord.objects.get(room=room, kind="embedding")
    assert record.priced and record.cost == 0 and record.input_tokens > 0


def test_the_local_model_in_a_separate_process_gives_the_same_vectors_at_a_lower_priority():
    """The embedded default's mode: the server's process never loads torch, and the child yields
    the CPU to it (niceness 10)."""
    require_local_model()
    texts = ["a cat", "a kitten", "a tax return"]
    inline = embeddings.LocalEmbedder().embed(texts)
    separate = embeddings.LocalEmbedder(separate_process=True)
    try:
        embedded = separate.embed(texts)
        assert embedded.tokens == inline.tokens
        for ours, theirs in zip(embedded.vectors, inline.vectors, strict=True):
            assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-5
        assert separate._pool is not None
        (child,) = separate._pool._processes.values()
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    finally:
        if separate._pool is not None:
            separate._pool.shutdown()


def test_a_dead_embedding_process_is_a_retryable_failure_and_the_next_call_starts_another():
    require_local_model()
    separate = embeddings.LocalEmbedder(separate_process=True)
    try:
        separate.embed(["warm up"])
        assert separate._pool is not None
        (child,) = separate._pool._processes.values()
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        with pytest.raises(EmbeddingFailed, match="local embedding process failed"):
            separate.embed(["after the crash"])
        assert len(separate.embed(["and again"]).vectors) == 1
    finally:
        if separate._pool is not None:
            separate._pool.shutdown()
