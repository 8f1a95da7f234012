"""The ChatBot in the situations issue 8 names beyond the basic turn: two server processes and one
trace, approvals through the asker's `ui`, a server restart between turns, upstream trouble, and a
thread far longer than the model's window. The model is `FakeOpenAI` (the real wire format)."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from meshsite_client.llm.tokens import token_counter

from observability.models import ToolCall as LedgerRow
from observability.models import UsageRecord
from tests.agents_client.live import running, until
from tests.agents_client.test_chatbot_live import agent_token, assistant, reply_from, start_thread
from tests.support.fake_openai import ToolCall, fake_openai
from tests.support.peer import ADD_TOOL, RawPeer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
__all__ = ["fake_openai"]

UI_TOOLKIT = [
    {
        "name": "ask_user",
        "description": "Ask the person in this tab a question",
        "input_schema": {
            "type": "object",
            "properties": {"question": {"type": "string"}, "choices": {"type": "array", "items": {"type": "string"}}},
            "required": ["question"],
        },
    }
]


def turn_event(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("method") == "threads.turn" and m["params"]["event"] == name


async def thread_messages(peer: RawPeer, thread_id: str) -> list[dict[str, Any]]:
    response = await peer.invoke("threads", "get", {"thread_id": thread_id, "limit": 200})
    return list(response["result"]["output"]["messages"])


async def db(read: Callable[[], Any]) -> Any:
    """Runs a database read in a worker thread, closing that thread's connection after (an open one
    would keep the test database from being dropped at the end of the run)."""

    def run() -> Any:
        try:
            return read()
        finally:
            connection.close()

    return await asyncio.to_thread(run)


async def eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 10) -> Any:
    """Re-reads the database until `done(value)`; returns the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = await db(read)
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


# -- 1. two processes, one trace ---------------------------------------------------------------


@pytest.mark.redis
async def test_a_turn_across_two_nodes_runs_a_remote_tool_and_shows_in_thread_usage_and_one_trace(
    two_nodes, mint, fake_openai, project
):
    node_a, node_b = two_nodes
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 2, "b": 3})])
    fake_openai.reply("It is 5.", usage=(60, 4))
    async with (
        await RawPeer.connect(node_b.ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(node_b.ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), node_a.ws_url("lobby"), agent_token(mint)) as bot,
    ):
        await bob.register("calc", [ADD_TOOL])
        await until(bot.agent.room, lambda: any(tk.name == "calc" for tk in bot.agent.room.toolkits))
        thread_id = await start_thread(alice, "What is 2+3?")

        call = await bob.next_call(timeout=15)  # routed from node A to node B
        assert (call["params"]["toolkit"], call["params"]["arguments"]) == ("calc", {"a": 2, "b": 3})
        progress = {"call_id": call["params"]["call_id"], "progress": "adding"}
        await bob.send({"jsonrpc": "2.0", "method": "tools.progress", "params": progress})
        await alice.expect(turn_event("tool_call_progress"), 10)
        await bob.answer(call, 5)

        message = await reply_from(alice)
        ended = await alice.expect(turn_event("ended"), 10)
        assert ended["params"]["data"]["status"] == "ok"
        assert ended["params"]["data"]["usage"]["input_tokens"] >= 60
        turn_id = ended["params"]["turn_id"]
        # the events still in the inbox, plus the progress and ended ones taken out above
        streamed = 2 + sum(1 for m in alice.inbox if m.get("method") == "threads.turn")
        assert "".join(m["params"]["data"]["text"] for m in alice.inbox if turn_event("text")(m)) == "It is 5."

        # The thread holds the question and the answer with its tool-call record, as stored.
        stored = await thread_messages(alice, thread_id)
        assert [m["author"]["identity"] for m in stored] == ["alice", "assistant"]
        assert stored[1]["seq"] == message["seq"] and stored[1]["parts"] == message["parts"]
        text, tool_call = stored[1]["parts"]
        assert text == {"type": "text", "text": "It is 5."}
        assert {k: tool_call[k] for k in ("toolkit", "tool", "arguments", "status", "result")} == {
            "toolkit": "calc",
            "tool": "add",
            "arguments": {"a": 2, "b": 3},
            "status": "ok",
            "result": 5,
        }

    records = await db(lambda: list(UsageRecord.objects.filter(project=project, turn_id=turn_id).order_by("id")))
    assert [(r.agent, r.thread_id, r.model, r.kind) for r in records] == [
        ("assistant", thread_id, "gpt-test", "llm")
    ] * 2
    assert records[1].input_tokens == 60
    trace_id = records[0].trace_id
    assert len(trace_id) == 32 and {r.trace_id for r in records} == {trace_id}
    assert {r.headers["traceparent"].split("-")[1] for r in fake_openai.requests} == {trace_id}  # upstream too

    # Every call the turn caused, on either node, is in the ledger under that one trace.
    def bot_rows() -> list[LedgerRow]:
        return list(LedgerRow.objects.filter(project=project, caller_identity="assistant").order_by("started_at"))

    def complete(rows: list[LedgerRow]) -> bool:
        kinds = [(r.toolkit, r.tool) for r in rows]
        return kinds.count(("threads", "stream")) >= streamed and ("threads", "post") in kinds

    rows = await eventually(bot_rows, complete)
    kinds = [(r.toolkit, r.tool) for r in rows]
    assert kinds.count(("threads", "stream")) == streamed
    assert kinds.count(("usage", "record")) == 2
    assert {("calc", "add"), ("threads", "get"), ("threads", "post")} <= set(kinds)
    assert {(r.toolkit, r.tool, r.trace_id) for r in rows if r.trace_id != trace_id} == set()
    (add,) = [r for r in rows if r.toolkit == "calc"]
    assert (add.host_identity, add.status, add.caller_identity) == ("bob", "ok", "assistant")


# -- 2. approvals --------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["Allow", "Deny"])
async def test_a_tool_needing_approval_asks_the_asker_in_their_ui(ws_url, mint, fake_openai, answer):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 2, "b": 3})])
    fake_openai.reply("Done.")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai, approvals=["calc.add"]), ws_url("lobby"), agent_token(mint)) as bot,
    ):
        await bob.register("calc", [ADD_TOOL])
        assert "result" in await alice.register("ui", UI_TOOLKIT, public=False)
        await until(bot.agent.room, lambda: {"calc", "ui"} <= {tk.name for tk in bot.agent.room.toolkits})
        await start_thread(alice, "Add 2 and 3, please")

        ask = await alice.next_call(timeout=15)
        assert (ask["params"]["toolkit"], ask["params"]["tool"]) == ("ui", "ask_user")
        assert ask["params"]["caller"]["identity"] == "assistant"
        assert "calc.add" in ask["params"]["arguments"]["question"]
        assert ask["params"]["arguments"]["choices"] == ["Allow", "Deny"]
        assert not any(m.get("method") == "tools.call" for m in bob.inbox)  # nothing runs before the answer
        await alice.answer(ask, {"answer": answer})

        if answer == "Allow":
            call = await bob.next_call(timeout=10)
            trace = {c["params"]["_meta"]["traceparent"].split("-")[1] for c in (ask, call)}
            assert len(trace) == 1  # the question and the call it allowed are in the turn's trace
            await bob.answer(call, 5)
        message = await reply_from(alice)
        ended = await alice.expect(turn_event("ended"), 10)
        assert ended["params"]["data"]["status"] == "ok"
        (part,) = [p for p in message["parts"] if p["type"] == "tool_call"]
        tool_result = [m for m in fake_openai.requests[1].messages if m["role"] == "tool"]
        assert len(tool_result) == 1
        if answer == "Allow":
            assert (part["status"], part["approved_by"], part["result"]) == ("ok", "alice", 5)
            assert tool_result[0]["content"] == "5"
        else:
            assert part["status"] == "refused" and "result" not in part and "not approve" in part["error"]
            assert part["refused_by"] == "alice"
            assert "not approve" in tool_result[0]["content"]
            assert not any(m.get("method") == "tools.call" for m in bob.inbox)  # the tool never ran


# -- 3. a restart between two turns --------------------------------------------------------------


async def test_the_history_survives_a_server_restart_between_two_turns(mint, fake_openai):
    fake_openai.reply("First answer.")
    fake_openai.reply("Second answer.")
    server = ServerProcess(redis_url=settings.REDIS_URL or None)
    await asyncio.to_thread(server.start)
    try:
        # max_backoff: the bot's client retries quickly while the server is down
        async with running(assistant(fake_openai), server.ws_url("lobby"), agent_token(mint), max_backoff=0.5) as bot:
            async with await RawPeer.connect(server.ws_url("lobby"), mint("alice")) as alice:
                thread_id = await start_thread(alice, "one")
                assert (await reply_from(alice))["parts"][0]["text"] == "First answer."
                await alice.expect(turn_event("ended"), 10)

            assert await asyncio.to_thread(server.stop) == 0  # SIGTERM: a graceful stop
            assert not bot.agent.room.connected
            await asyncio.to_thread(server.start)  # same port: the bot's client finds it again
            await until(bot.agent.room, lambda: bot.agent.room.connected, timeout=10)

            async with await RawPeer.connect(server.ws_url("lobby"), mint("alice")) as alice:
                await alice.invoke("threads", "post", {"thread_id": thread_id, "text": "two"})
                assert (await reply_from(alice))["parts"][0]["text"] == "Second answer."
                stored = await thread_messages(alice, thread_id)
        second = fake_openai.requests[1].messages
        assert [(m["role"], m["content"]) for m in second[1:]] == [
            ("user", "one"),
            ("assistant", "First answer."),
            ("user", "two"),
        ]
        assert second[0]["role"] == "system"
        assert [m["author"]["identity"] for m in stored] == ["alice", "assistant", "alice", "assistant"]
    finally:
        await asyncio.to_thread(server.stop)


# -- 4. upstream trouble ---------------------------------------------------------------------------


async def test_a_rate_limit_then_success_gives_one_answer(ws_url, mint, fake_openai, project):
    fake_openai.error(429, retry_after=0.01)
    fake_openai.reply("Recovered.")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        thread_id = await start_thread(alice, "hi")
        message = await reply_from(alice)
        ended = await alice.expect(turn_event("ended"), 10)
        assert ended["params"]["data"]["status"] == "ok"
        assert message["parts"] == [{"type": "text", "text": "Recovered."}]
        assert [r.status for r in fake_openai.requests] == [429, 200]
        stored = await thread_messages(alice, thread_id)
        assert [m["author"]["identity"] for m in stored] == ["alice", "assistant"]
    records = await db(lambda: UsageRecord.objects.filter(project=project).count())
    assert records == 1  # the refused request consumed nothing


async def test_a_stream_dropped_midway_ends_the_turn_with_an_explained_error(ws_url, mint, fake_openai):
    fake_openai.reply("Some words that never all arrive", drop_after=2)
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        thread_id = await start_thread(alice, "hi")
        message = await reply_from(alice)
        ended = await alice.expect(turn_event("ended"), 10)
        assert ended["params"]["data"]["status"] == "error"
        (text,) = [p["text"] for p in message["parts"] if p["type"] == "text"]
        assert text.startswith("Some") and "model failed" in text and "stream broke" in text
        assert len(fake_openai.requests) == 1  # output had begun: not retried
        await asyncio.sleep(0.3)  # nothing else is coming
        stored = await thread_messages(alice, thread_id)
        assert [m["author"]["identity"] for m in stored] == ["alice", "assistant"]
        assert stored[1]["parts"] == message["parts"]


# -- 5. a context far larger than the window -------------------------------------------------------


async def test_a_thread_far_longer_than_the_window_is_trimmed_to_fit(ws_url, mint, fake_openai):
    fake_openai.reply("Short answer.")
    bot = assistant(fake_openai, context_window=2000)
    config = bot.llm_config()
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        created = await alice.invoke("threads", "create", {"title": "Long"})
        thread_id = created["result"]["output"]["thread"]["id"]
        old = [f"{n:02d} " + chr(ord("a") + n % 26) * 1997 for n in range(40)]  # 2,000 characters each
        for text in old:
            posted = await alice.invoke("threads", "post", {"thread_id": thread_id, "text": text})
            assert "result" in posted, posted
        async with running(bot, ws_url("lobby"), agent_token(mint)):
            await alice.invoke("threads", "post", {"thread_id": thread_id, "text": "So, what now?"})
            message = await reply_from(alice)
            ended = await alice.expect(turn_event("ended"), 10)
        assert ended["params"]["data"]["status"] == "ok"
        assert message["parts"][0]["text"] == "Short answer."
    (request,) = fake_openai.requests
    sent = request.messages
    counter = token_counter(config.model)
    total = counter.count_messages(sent) + counter.count_tools(request.tools)
    assert total <= 2000 - config.reserve_tokens + 3  # fits, with the answer's reserve left free
    assert sent[0]["role"] == "system" and "Answer briefly." in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": "So, what now?", "name": "alice"}
    kept = [m["content"] for m in sent[1:-1]]
    assert 0 < len(kept) < len(old) and kept == old[len(old) - len(kept) :]  # the newest ones, in order


async def test_a_last_message_larger_than_the_window_is_a_clear_turn_error(ws_url, mint, fake_openai):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai, context_window=2000), ws_url("lobby"), agent_token(mint)),
    ):
        thread_id = await start_thread(alice, "x" * 20_000)
        message = await reply_from(alice)
        ended = await alice.expect(turn_event("ended"), 10)
        assert ended["params"]["data"]["status"] == "error"
        assert "context window is 2000 tokens" in message["parts"][0]["text"]
        assert fake_openai.requests == []  # a request bound to fail is not sent
        stored = await thread_messages(alice, thread_id)
        assert [m["author"]["identity"] for m in stored] == ["alice", "assistant"]


# -- tools through the room: whose tab, and a call cut short ------------------------------------------


async def reply_in(peer: RawPeer, thread_id: str, timeout: float = 15) -> dict[str, Any]:
    event = await peer.expect(
        lambda m: (
            m.get("method") == "threads.message"
            and m["params"]["thread_id"] == thread_id
            and m["params"]["message"]["author"]["identity"] == "assistant"
        ),
        timeout,
    )
    return dict(event["params"]["message"])


async def test_concurrent_turns_ask_each_asker_in_their_own_ui(ws_url, mint, fake_openai):
    fake_openai.reply(tool_calls=[ToolCall("ui__ask_user", {"question": "Red or blue?"})], hold_after=1)  # alice's
    fake_openai.reply("Hello bob.")  # bob's turn, while alice's waits for the model
    fake_openai.reply("Red it is.")  # alice's turn, after her answer
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)) as bot,
    ):
        await alice.register("ui", UI_TOOLKIT, public=False)
        await bob.register("ui", UI_TOOLKIT, public=False)
        await until(bot.agent.room, lambda: [tk.name for tk in bot.agent.room.toolkits].count("ui") == 2)
        thread_a = await start_thread(alice, "Pick a colour with me")
        await asyncio.to_thread(fake_openai.wait_for_requests, 1, 10)
        thread_b = await start_thread(bob, "hi")
        assert (await reply_in(bob, thread_b))["parts"][0]["text"] == "Hello bob."
        fake_openai.release()  # now alice's model call asks for `ui__ask_user`: hers, not bob's

        ask = await alice.next_call(timeout=10)
        assert (ask["params"]["toolkit"], ask["params"]["arguments"]) == ("ui", {"question": "Red or blue?"})
        await alice.answer(ask, {"answer": "red"})
        message = await reply_in(alice, thread_a)
        assert message["parts"][0]["text"] == "Red it is."
        assert message["parts"][1]["status"] == "ok" and message["parts"][1]["result"] == {"answer": "red"}
        assert not any(m.get("method") == "tools.call" for m in bob.inbox)
        assert [t["function"]["name"] for t in fake_openai.requests[1].tools] == ["ui__ask_user"]


async def test_interrupting_a_turn_during_a_tool_call_cancels_it_and_keeps_the_thread_usable(ws_url, mint, fake_openai):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 1, "b": 2})])
    fake_openai.reply("Starting over.")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)) as bot,
    ):
        await bob.register("calc", [ADD_TOOL])
        await until(bot.agent.room, lambda: any(tk.name == "calc" for tk in bot.agent.room.toolkits))
        thread_id = await start_thread(alice, "add 1 and 2, slowly")
        await bob.next_call(timeout=15)  # never answered
        stopped = await alice.invoke("assistant", "interrupt", {"thread_id": thread_id})
        assert stopped["result"]["output"] == {"interrupted": True}
        message = await reply_in(alice, thread_id)
        ended = await alice.expect(turn_event("ended"), 10)
        assert ended["params"]["data"]["status"] == "interrupted"
        (part,) = message["parts"]
        assert (part["type"], part["tool"], part["status"]) == ("tool_call", "add", "cancelled")
        assert "interrupted" in part["error"]
        assert (await bob.notification("tools.cancelled", 10))["reason"] == "cancelled"

        # The next turn reads the cut-short call back as a valid exchange (the fake answers 400 otherwise).
        await alice.invoke("threads", "post", {"thread_id": thread_id, "text": "never mind"})
        assert (await reply_in(alice, thread_id))["parts"][0]["text"] == "Starting over."
        second = fake_openai.requests[1].messages
        assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "user"]
        assert "interrupted" in second[3]["content"]
