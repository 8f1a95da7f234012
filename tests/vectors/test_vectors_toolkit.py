"""The `vectors` toolkit over a real server and sockets: upsert a custom source, search it,
replace it, delete it; bad input is refused with a clear error."""

import pytest

from observability.models import UsageRecord
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

CHUNKS = [
    {"text": "The staff meeting is every Monday at 9.", "metadata": {"kind": "calendar"}},
    {"text": "The coffee machine is descaled on the first of each month.", "metadata": {"kind": "facilities"}},
]


async def output(peer: RawPeer, tool: str, arguments: dict) -> dict:
    response = await peer.invoke("vectors", tool, arguments, timeout=90)
    assert "result" in response, response
    return response["result"]["output"]


async def test_an_agent_upserts_searches_replaces_and_deletes_its_own_source(room, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        assert await output(robot, "upsert", {"source": "office-faq", "chunks": CHUNKS}) == {"upserted": 2}
        hits = (await output(robot, "search", {"query": "When do we meet each week?", "k": 1}))["results"]
        assert hits[0]["source"] == "custom:office-faq" and hits[0]["text"] == CHUNKS[0]["text"]
        filtered = await output(
            robot, "search", {"query": "When do we meet?", "filters": {"metadata": {"kind": "facilities"}}}
        )
        assert [hit["metadata"]["kind"] for hit in filtered["results"]] == ["facilities"]
        await output(robot, "upsert", {"source": "office-faq", "chunks": [{"text": "Meetings moved to Tuesday."}]})
        hits = (await output(robot, "search", {"query": "meeting day", "k": 5}))["results"]
        assert [hit["text"] for hit in hits] == ["Meetings moved to Tuesday."]
        assert await output(robot, "delete", {"source": "office-faq"}) == {"deleted": 1}
        assert (await output(robot, "search", {"query": "meeting day"}))["results"] == []
        status = await output(robot, "status", {})
        assert status["chunks"] == {"file": 0, "thread": 0, "custom": 0} and status["problem"] is None
    purposes = [r.metadata["purpose"] async for r in UsageRecord.objects.filter(kind="embedding").order_by("id")]
    assert purposes == ["upsert", "query", "query", "upsert", "query", "query"]


async def test_bad_input_is_refused_and_the_room_keeps_serving(room, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        refused = await robot.invoke("vectors", "upsert", {"source": "x", "chunks": []})
        assert refused["error"]["code"] == -32003
        refused = await robot.invoke("vectors", "search", {"query": "x", "ef_search": 0})
        assert refused["error"]["code"] == -32003
        refused = await robot.invoke("rag", "search", {"query": "x", "filters": {"metadata": {"a": {"nested": 1}}}})
        assert refused["error"]["code"] == -32003
        assert (await output(robot, "search", {"query": "anything"}))["results"] == []
