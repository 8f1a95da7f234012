"""Threads: people and agents share a conversation live, and it is still there after they leave."""

import asyncio

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def output(peer: RawPeer, tool: str, arguments: dict | None = None, **extra) -> dict:
    response = await peer.invoke("threads", tool, arguments or {}, **extra)
    assert "result" in response, response
    return response["result"]["output"]


async def error_code(peer: RawPeer, tool: str, arguments: dict) -> int:
    response = await peer.invoke("threads", tool, arguments)
    assert "error" in response, response
    return response["error"]["code"]


async def test_a_thread_is_shared_live_and_numbered(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("helper", role="agent")) as agent,
    ):
        thread = (await output(alice, "create", {"title": "Trip"}))["thread"]
        assert (await agent.notification("threads.created"))["thread"]["id"] == thread["id"]
        first = (await output(alice, "post", {"thread_id": thread["id"], "text": "Book a train"}))["message"]
        seen = await agent.notification("threads.message")
        assert seen == {"thread_id": thread["id"], "message": first}
        assert (first["seq"], first["author"]["identity"]) == (1, "alice")
        call = {"type": "tool_call", "call_id": "c1", "toolkit": "rail", "tool": "book", "status": "running"}
        reply = await output(
            agent, "post", {"thread_id": thread["id"], "parts": [{"type": "text", "text": "On it"}, call]}
        )
        assert reply["message"]["seq"] == 2
        await alice.notification("threads.message")
        done = [{"type": "text", "text": "On it"}, {**call, "status": "ok", "result": {"seat": "12A"}}]
        updated = await output(agent, "update", {"thread_id": thread["id"], "seq": 2, "parts": done})
        assert (await alice.notification("threads.message_updated"))["message"] == updated["message"]
        # only the author may update a message
        assert await error_code(alice, "update", {"thread_id": thread["id"], "seq": 2, "text": "x"}) == (
            ErrorCode.PERMISSION_DENIED
        )


async def test_concurrent_posts_get_gapless_numbers(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        thread = (await output(alice, "create"))["thread"]
        posts = [output(alice, "post", {"thread_id": thread["id"], "text": f"m{i}"}) for i in range(20)]
        numbers = sorted(result["message"]["seq"] for result in await asyncio.gather(*posts))
        assert numbers == list(range(1, 21))


async def test_a_thread_reloads_intact_a_page_at_a_time_after_everyone_left(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        thread = (await output(alice, "create", {"title": "Long"}))["thread"]
        for index in range(7):
            await output(alice, "post", {"thread_id": thread["id"], "text": f"line {index}"})
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        texts, since, more = [], 0, True
        while more:
            page = await output(alice, "get", {"thread_id": thread["id"], "since_seq": since, "limit": 3})
            texts += [m["parts"][0]["text"] for m in page["messages"]]
            since, more = page["next_since_seq"], page["more"]
        assert texts == [f"line {index}" for index in range(7)]
        assert page["thread"]["last_seq"] == 7


async def test_threads_are_listed_most_recent_first_a_page_at_a_time(ws_url, mint):
    async with await RawPeer.connect(ws_url("listing"), mint("alice", room="listing")) as alice:
        ids = [(await output(alice, "create", {"title": f"t{i}"}))["thread"]["id"] for i in range(5)]
        await output(alice, "post", {"thread_id": ids[0], "text": "bump"})  # the oldest becomes the newest
        listed, cursor = [], None
        while True:
            page = await output(alice, "list", {"limit": 2, **({"cursor": cursor} if cursor else {})})
            listed += [t["id"] for t in page["threads"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert listed == [ids[0], *reversed(ids[1:])]
        assert await error_code(alice, "list", {"cursor": "not-a-cursor"}) == ErrorCode.INVALID_PARAMS


async def test_grants_decide_who_reads_and_posts(ws_url, mint):
    reader_only = {"threads": {"read": ["*"], "write": []}}
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("viewer", grants=reader_only)) as viewer,
        await RawPeer.connect(
            ws_url("lobby"), mint("outsider", grants={"threads": {"read": [], "write": []}})
        ) as outsider,
    ):
        thread = (await output(alice, "create"))["thread"]
        await output(alice, "post", {"thread_id": thread["id"], "text": "private plans"})
        assert len((await output(viewer, "get", {"thread_id": thread["id"]}))["messages"]) == 1
        assert (
            await error_code(viewer, "post", {"thread_id": thread["id"], "text": "hi"}) == ErrorCode.PERMISSION_DENIED
        )
        assert await error_code(viewer, "create", {}) == ErrorCode.PERMISSION_DENIED
        assert await error_code(outsider, "get", {"thread_id": thread["id"]}) == ErrorCode.PERMISSION_DENIED
        assert (await output(outsider, "list"))["threads"] == []
        await viewer.notification("threads.message")
        assert (await outsider.result("ping"))["pong"] is True
        assert not [m for m in outsider.inbox if str(m.get("method", "")).startswith("threads.")]


async def test_bad_input_is_explained_and_deleting_is_for_the_creator(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
    ):
        thread = (await output(alice, "create"))["thread"]
        assert await error_code(alice, "post", {"thread_id": thread["id"]}) == ErrorCode.INVALID_PARAMS
        bad_part = {"thread_id": thread["id"], "parts": [{"type": "video", "url": "x"}]}
        assert await error_code(alice, "post", bad_part) == ErrorCode.INVALID_ARGUMENTS
        assert await error_code(alice, "get", {"thread_id": "t_0000000000000000"}) == ErrorCode.NOT_FOUND
        assert await error_code(bob, "delete", {"thread_id": thread["id"]}) == ErrorCode.PERMISSION_DENIED
        assert (await output(alice, "delete", {"thread_id": thread["id"]}))["deleted"] is True
        assert (await bob.notification("threads.deleted"))["thread_id"] == thread["id"]
        assert await error_code(alice, "get", {"thread_id": thread["id"]}) == ErrorCode.NOT_FOUND


async def test_a_thread_switches_toolkits_on_and_only_its_creator_or_an_agent_changes_them(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("helper", role="agent")) as agent,
    ):
        thread = (await output(alice, "create", {"title": "Sums", "toolkits": ["calc"]}))["thread"]
        assert thread["toolkits"] == ["calc"]
        configured = await output(alice, "configure", {"thread_id": thread["id"], "toolkits": ["calc", "rail*"]})
        assert configured["thread"]["toolkits"] == ["calc", "rail*"]
        updated = await agent.notification("threads.updated")
        assert updated == {"thread_id": thread["id"], "thread": configured["thread"]}
        assert await error_code(bob, "configure", {"thread_id": thread["id"], "toolkits": []}) == (
            ErrorCode.PERMISSION_DENIED
        )
        renamed = await output(agent, "configure", {"thread_id": thread["id"], "title": "Maths"})
        assert (renamed["thread"]["title"], renamed["thread"]["toolkits"]) == ("Maths", ["calc", "rail*"])
        page = await output(bob, "get", {"thread_id": thread["id"]})
        assert page["thread"]["toolkits"] == ["calc", "rail*"]
        for bad in (["no spaces"], ["x" * 65], ["calc", "calc"], [f"t{i}" for i in range(33)]):
            assert await error_code(alice, "configure", {"thread_id": thread["id"], "toolkits": bad}) == (
                ErrorCode.INVALID_ARGUMENTS
            )


async def test_an_answer_names_the_message_it_replies_to(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        thread = (await output(alice, "create"))["thread"]
        question = (await output(alice, "post", {"thread_id": thread["id"], "text": "q"}))["message"]
        assert question["reply_to"] is None
        answer = await output(alice, "post", {"thread_id": thread["id"], "text": "a", "reply_to": 1})
        assert (answer["message"]["seq"], answer["message"]["reply_to"]) == (2, 1)
        assert await error_code(alice, "post", {"thread_id": thread["id"], "text": "x", "reply_to": 3}) == (
            ErrorCode.INVALID_PARAMS
        )
        page = await output(alice, "get", {"thread_id": thread["id"]})
        assert [m["reply_to"] for m in page["messages"]] == [None, 1]
