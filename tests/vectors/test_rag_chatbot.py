"""A ChatBot given the `rag` toolkit answers from the room's documents with citations: the model
(a local server speaking OpenAI's wire format) calls `rag.search`, gets the passages with their
sources, and the answer cites them. Runs on either database (exact search on SQLite)."""

import pytest
from asgiref.sync import sync_to_async
from meshsite_client.agents.chatbot import ChatBot

from rooms.models import Room
from tests.agents_client.live import running
from tests.support.fake_openai import FakeOpenAI, ToolCall, fake_openai
from tests.support.peer import RawPeer
from vectors.actions import replace_source_chunks
from vectors.embeddings import get_embedder
from vectors.models import SourceKind

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]
__all__ = ["fake_openai"]

DOCUMENTS = {
    "docs/warranty.md": "Every espresso machine has a warranty of 36 months from the date of purchase.",
    "docs/returns.md": "Unused items may be returned within 30 days for a full refund.",
    "docs/shipping.md": "Orders above 50 euros ship for free within the country.",
}


def index_documents(room: Room) -> None:
    embedder = get_embedder()
    for path, text in DOCUMENTS.items():
        replace_source_chunks(
            room.pk,
            collection="room",
            kind=SourceKind.FILE,
            ref=path,
            part="",
            version="1",
            texts=[text],
            vectors=embedder.embed([text]).vectors,
            model=embedder.model,
            metadata=[{"path": path}],
        )


def librarian(fake: FakeOpenAI) -> ChatBot:
    return ChatBot(
        name="librarian",
        model="gpt-test",
        api_key="sk-test",
        base_url=fake.base_url,
        tool_toolkits=["rag"],
        rules=["Answer from the room's documents (use rag.search) and cite each source as [source]."],
    )


async def test_a_chatbot_answers_from_room_documents_with_citations(room, ws_url, mint, fake_openai):
    await sync_to_async(index_documents)(room)
    fake_openai.reply(tool_calls=[ToolCall("rag__search", {"query": "espresso machine warranty length", "k": 2})])
    fake_openai.reply("Espresso machines have a 36-month warranty [file:docs/warranty.md].")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(librarian(fake_openai), ws_url("lobby"), mint("librarian", role="agent", agent="librarian")),
    ):
        created = await alice.invoke("threads", "create", {"title": "Warranty"})
        thread_id = created["result"]["output"]["thread"]["id"]
        await alice.invoke("threads", "post", {"thread_id": thread_id, "text": "How long is the warranty?"})
        reply = await alice.expect(
            lambda m: (
                m.get("method") == "threads.message" and m["params"]["message"]["author"]["identity"] == "librarian"
            ),
            90,
        )
    text, tool_call = reply["params"]["message"]["parts"]
    assert text["text"] == "Espresso machines have a 36-month warranty [file:docs/warranty.md]."
    assert (tool_call["toolkit"], tool_call["tool"], tool_call["status"]) == ("rag", "search", "ok")
    results = tool_call["result"]["results"]
    assert results[0]["source"] == "file:docs/warranty.md" and "36 months" in results[0]["text"]
    assert len(results) == 2
    # the model was offered rag.search and saw the passages with their sources
    assert {t["function"]["name"] for t in fake_openai.requests[0].tools} == {"rag__search"}
    tool_message = fake_openai.requests[1].messages[-1]
    assert tool_message["role"] == "tool" and "file:docs/warranty.md" in tool_message["content"]
