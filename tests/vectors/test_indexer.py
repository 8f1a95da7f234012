"""The Indexer end to end: real Postgres + pgvector, a real Celery worker process running the
local model, a real web node and WebSocket clients. Files written, changed, moved and deleted in
room storage; a PDF and an email with an attachment; thread messages; retrieval by `rag.search`
following each participant's grants; progress in the room."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from files.actions import do_delete_file, do_move_file, do_write_file
from observability.models import UsageRecord
from rooms.models import Room
from tests.support.peer import RawPeer
from tests.vectors.conftest import finished_job, wait_for
from tests.vectors.documents import make_email, make_pdf
from vectors.models import Chunk, IndexJob

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),  # processes load the model on a shared 2-core machine
]

HANDBOOK_V1 = "Opening hours.\n\nThe office opens at nine in the morning and closes at five.\n\nParking is free."
HANDBOOK_V2 = "Opening hours.\n\nThe office now opens at eight in the morning and closes at four.\n\nParking is free."


def write(room: Room, path: str, content: bytes, content_type: str = "text/plain") -> int:
    return do_write_file(room=room, path=path, content=content, content_type=content_type, written_by="alice").version


def texts_of(room: Room, path: str) -> list[str]:
    return list(Chunk.objects.filter(room=room, source_kind="file", source_ref=path).values_list("text", flat=True))


async def search(peer: RawPeer, query: str, **arguments) -> list[dict]:
    response = await peer.invoke("rag", "search", {"query": query, **arguments}, timeout=90)
    assert "result" in response, response
    return response["result"]["output"]["results"]


def test_a_file_is_indexed_reindexed_on_change_moved_and_removed_on_delete(room, celery_worker):
    version = write(room, "docs/handbook.md", HANDBOOK_V1.encode(), "text/markdown")
    job = finished_job(room, "docs/handbook.md", version)
    assert (job.status, job.chunks) == ("done", 1)
    assert "opens at nine" in texts_of(room, "docs/handbook.md")[0]

    version = write(room, "docs/handbook.md", HANDBOOK_V2.encode(), "text/markdown")
    assert finished_job(room, "docs/handbook.md", version).status == "done"
    (text,) = texts_of(room, "docs/handbook.md")
    assert "opens at eight" in text and "nine" not in text
    assert set(Chunk.objects.filter(room=room).values_list("version", flat=True)) == {str(version)}

    moved = do_move_file(room=room, source="docs/handbook.md", destination="docs/office.md", moved_by="alice")
    job = finished_job(room, "docs/office.md", moved.version)
    assert job.status == "skipped" and job.detail == "already indexed at this version"  # moved, not re-embedded
    assert texts_of(room, "docs/handbook.md") == [] and len(texts_of(room, "docs/office.md")) == 1

    do_delete_file(room=room, path="docs/office.md", deleted_by="alice")
    wait_for(lambda: not Chunk.objects.filter(room=room).exists(), 60, "the chunks' removal")
    assert IndexJob.objects.filter(room=room, action="remove", status="done").count() == 1
    # the Indexer's embedding usage is in the ledger, priced (the local model is free)
    usage = UsageRecord.objects.filter(room=room, kind="embedding", agent="indexer")
    assert usage.count() == 2 and all(r.priced and r.cost == 0 and r.input_tokens > 0 for r in usage)


def test_the_same_change_is_indexed_once_and_a_superseded_version_is_skipped(room, celery_worker):
    from vectors.actions import do_enqueue_job

    first = write(room, "notes.txt", b"Version one of the notes.")
    second = write(room, "notes.txt", b"Version two of the notes.")
    assert do_enqueue_job(room.pk, "index", "file", "notes.txt", str(second)) is None  # already queued
    old, new = finished_job(room, "notes.txt", first), finished_job(room, "notes.txt", second)
    assert old.status == "skipped" and "superseded" in old.detail
    assert new.status == "done"
    assert texts_of(room, "notes.txt") == ["Version two of the notes."]


@pytest.mark.asyncio
async def test_documents_pdf_and_email_are_searchable_within_each_participants_grants(
    room, celery_worker, ws_url, mint
):
    pdf = make_pdf(["Warranty policy.", "Every espresso machine has a warranty of 36 months."], title="Warranty")
    eml = make_email(
        "Quote for the grinders",
        "Hello team, our quote is attached. Regards, Dana",
        [("quote.pdf", "application/pdf", make_pdf(["Twelve coffee grinders cost 840 euros in total."]))],
    )
    secret = b"Salaries.\n\nThe head barista earns 4100 euros a month."
    versions = {
        "docs/warranty.pdf": await sync_to_async(write)(room, "docs/warranty.pdf", pdf, "application/pdf"),
        "mail/inbox/quote.eml": await sync_to_async(write)(room, "mail/inbox/quote.eml", eml, "message/rfc822"),
        "hr/salaries.txt": await sync_to_async(write)(room, "hr/salaries.txt", secret),
    }
    for path, version in versions.items():
        job = await sync_to_async(finished_job)(room, path, version)
        assert job.status == "done", (path, job.detail)

    bob_token = mint("bob", grants={"storage": {"read": ["docs/*", "mail/*"], "write": []}})
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), bob_token) as bob,
    ):
        hits = await search(alice, "How long is the warranty on espresso machines?", k=1)
        assert hits[0]["source"] == "file:docs/warranty.pdf" and "36 months" in hits[0]["text"]
        hits = await search(bob, "How much do the coffee grinders cost?", k=2)
        assert hits[0]["source"] == "file:mail/inbox/quote.eml" and "840 euros" in hits[0]["text"]
        assert hits[0]["metadata"]["attachments"] == ["quote.pdf"]
        # alice may read hr/, bob may not: the same question, different answers
        question = "What does the head barista earn?"
        assert (await search(alice, question, k=1))[0]["source"] == "file:hr/salaries.txt"
        assert all(hit["source_ref"] != "hr/salaries.txt" for hit in await search(bob, question, k=10))
        # bad input gets a clear error and the room keeps serving
        bad = await bob.invoke("rag", "search", {"query": "", "k": 500})
        assert bad["error"]["code"] == -32003, bad  # invalid arguments (schema)
        assert (await search(bob, "Warranty?", k=1))[0]["source"] == "file:docs/warranty.pdf"


@pytest.mark.asyncio
async def test_thread_messages_are_indexed_and_progress_shows_in_the_room(room, celery_worker, indexing_server, mint):
    ws_url = indexing_server.ws_url  # a node whose Indexer watches what is posted through it
    charlie_token = mint("charlie", grants={"threads": {"read": [], "write": []}})
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), charlie_token) as charlie,
    ):
        created = await alice.invoke("threads", "create", {"title": "Release"})
        thread_id = created["result"]["output"]["thread"]["id"]
        posted = await alice.invoke(
            "threads", "post", {"thread_id": thread_id, "text": "We ship version 2.4 on Thursday."}
        )
        assert "result" in posted, posted
        done = await alice.expect(
            lambda m: m.get("method") == "vectors.progress" and m["params"]["status"] in ("done", "failed"), 90
        )
        assert done["params"]["source"] == f"thread:{thread_id}#1" and done["params"]["status"] == "done"
        assert done["params"]["pending"] == 0
        hits = await search(alice, "When do we ship version 2.4?", k=1)
        assert hits[0]["source"] == f"thread:{thread_id}#1" and hits[0]["metadata"]["author"] == "alice"
        assert await search(charlie, "When do we ship version 2.4?") == []
        await asyncio.sleep(0.5)
        # charlie may not read the thread: no progress about it reached him either
        assert not [m for m in charlie.inbox if m.get("method") == "vectors.progress"]
        status = await alice.invoke("vectors", "status", {})
        output = status["result"]["output"]
        assert output["model"] == "all-MiniLM-L6-v2" and output["chunks"]["thread"] == 1
        assert output["jobs"][0]["source"] == f"thread:{thread_id}#1"
