"""The store itself (on whichever database this run has: exact search on SQLite, HNSW on
Postgres): upsert replaces a source, search ranks by meaning, filters narrow, delete removes, and
a caller only ever gets chunks from sources it may read, even when others are closer."""

import pytest

from rooms.models import Room
from tests.vectors.conftest import grants_for
from vectors.access import reader, sql_patterns
from vectors.actions import do_delete_source, do_upsert_chunks, replace_source_chunks
from vectors.embeddings import get_embedder
from vectors.models import Chunk, SourceKind
from vectors.search import Filters, Query, search

pytestmark = pytest.mark.django_db(transaction=True)

FACTS = {
    "cooking": ["Simmer the tomato sauce for twenty minutes.", "Knead the bread dough until it is smooth."],
    "astronomy": ["Jupiter is the largest planet of the solar system.", "A light year measures distance."],
    "finance": ["Invoices are paid within thirty days.", "The quarterly budget review is in March."],
}


def embed(texts: list[str]) -> list[list[float]]:
    return get_embedder().embed(texts).vectors


def upsert(room: Room, source: str, texts: list[str], collection: str = "room", **metadata: str) -> None:
    items = [{"text": text, "metadata": dict(metadata)} for text in texts]
    do_upsert_chunks(room.pk, collection, source, items, embed(texts), get_embedder().model)


def ask(room: Room, text: str, k: int = 3, **options) -> list:
    return search(Query(room_id=room.pk, model=get_embedder().model, vector=embed([text])[0], k=k, **options))


def test_search_ranks_chunks_by_meaning(room):
    for topic, texts in FACTS.items():
        upsert(room, topic, texts, topic=topic)
    hits = ask(room, "Which planet is the biggest?")
    assert hits[0].text == "Jupiter is the largest planet of the solar system."
    assert hits[0].source == "custom:astronomy" and 0 < hits[0].score <= 1
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_upserting_a_source_again_replaces_its_chunks(room):
    upsert(room, "finance", FACTS["finance"])
    upsert(room, "finance", ["Invoices are now paid within sixty days."])
    assert list(Chunk.objects.filter(room=room).values_list("text", flat=True)) == [
        "Invoices are now paid within sixty days."
    ]


def test_filters_narrow_the_search(room):
    for topic, texts in FACTS.items():
        upsert(room, topic, texts, collection="notes" if topic == "cooking" else "room", topic=topic)
    only_notes = ask(room, "Which planet is the biggest?", filters=Filters(collection="notes"))
    assert {hit.source for hit in only_notes} == {"custom:cooking"}
    finance = ask(room, "Which planet is the biggest?", filters=Filters(metadata={"topic": "finance"}))
    assert {hit.source_ref for hit in finance} == {"finance"}
    assert ask(room, "planets", filters=Filters(source_prefix="astro"))[0].source_ref == "astronomy"


def test_delete_by_source_removes_only_that_source(room):
    for topic, texts in FACTS.items():
        upsert(room, topic, texts)
    assert do_delete_source(room.pk, SourceKind.CUSTOM, "astronomy") == 2
    assert "astronomy" not in {hit.source_ref for hit in ask(room, "Which planet is the biggest?", k=10)}


def test_other_rooms_chunks_are_never_found(room, project):
    from rooms.actions.rooms import do_create_room

    other = do_create_room(project, "elsewhere")
    upsert(other, "astronomy", FACTS["astronomy"])
    assert ask(room, "Which planet is the biggest?") == []


def file_chunks(room: Room, path: str, texts: list[str]) -> None:
    replace_source_chunks(
        room.pk,
        collection="room",
        kind=SourceKind.FILE,
        ref=path,
        part="",
        version="1",
        texts=texts,
        vectors=embed(texts),
        model=get_embedder().model,
        metadata=[{"path": path}] * len(texts),
    )


def test_a_caller_gets_only_chunks_it_may_read_even_when_unreadable_ones_are_closer(room):
    # 30 secret chunks about the question, 1 readable chunk loosely about it: top-1 must be the readable one
    secret = [f"The launch code for rocket {n} is kept in the vault." for n in range(30)]
    file_chunks(room, "secret/codes.txt", secret)
    file_chunks(room, "users/bob/notes.txt", ["Rockets need fuel and a launch window."])
    bob = grants_for("user", "bob", storage={"read": ["users/bob/*"]})
    hits = ask(room, "What is the launch code of the rocket?", k=3, readable=reader(bob), patterns=sql_patterns(bob))
    assert [hit.source for hit in hits] == ["file:users/bob/notes.txt"]
    alice = grants_for("user", "alice")  # reads everything
    hits = ask(
        room, "What is the launch code of the rocket?", k=3, readable=reader(alice), patterns=sql_patterns(alice)
    )
    assert all(hit.source_ref == "secret/codes.txt" for hit in hits)


def test_thread_chunks_follow_thread_read_grants(room):
    texts = ["We agreed to ship the release on Friday."]
    replace_source_chunks(
        room.pk,
        collection="room",
        kind=SourceKind.THREAD,
        ref="t_0123456789abcdef",
        part="3",
        version="v",
        texts=texts,
        vectors=embed(texts),
        model=get_embedder().model,
        metadata=[{}],
    )
    reads_it = grants_for(threads={"read": ["t_0123456789abcdef"]})
    reads_none = grants_for(threads={"read": []})
    question = "When do we ship the release?"
    assert ask(room, question, readable=reader(reads_it), patterns=sql_patterns(reads_it))[0].source == (
        "thread:t_0123456789abcdef#3"
    )
    assert ask(room, question, readable=reader(reads_none), patterns=sql_patterns(reads_none)) == []
