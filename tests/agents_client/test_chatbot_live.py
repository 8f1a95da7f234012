"""The ChatBot against the real server, with a local server speaking OpenAI's wire format."""

import asyncio

import pytest
from meshsite_client.agents.chatbot import ChatBot

from observability.models import UsageRecord
from tests.agents_client.live import running
from tests.support.fake_openai import FakeOpenAI, ToolCall, fake_openai
from tests.support.peer import ADD_TOOL, RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
__all__ = ["fake_openai"]


def assistant(fake: FakeOpenAI, **config) -> ChatBot:
    config.setdefault("tool_toolkits", ["calc"])
    return ChatBot(
        name="assistant",
        title="Assistant",
        model="gpt-test",
        api_key="sk-test",
        base_url=fake.base_url,
        rules=["Answer briefly."],
        **config,
    )


def agent_token(mint) -> str:
    return mint("assistant", role="agent", agent="assistant")


async def start_thread(alice: RawPeer, text: str) -> str:
    created = await alice.invoke("threads", "create", {"title": "Chat"})
    thread_id = created["result"]["output"]["thread"]["id"]
    await alice.invoke("threads", "post", {"thread_id": thread_id, "text": text})
    return thread_id


async def reply_from(peer: RawPeer, name: str = "assistant", timeout: float = 15) -> dict:
    event = await peer.expect(
        lambda m: m.get("method") == "threads.message" and m["params"]["message"]["author"]["identity"] == name,
        timeout,
    )
    return event["params"]["message"]


async def test_a_question_runs_a_room_tool_and_the_answer_streams_and_lands_in_the_thread(
    ws_url, mint, fake_openai, project
):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 2, "b": 3})])
    fake_openai.reply("It is 5.", usage=(50, 5), cached_tokens=10)
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        await bob.register("calc", [ADD_TOOL])
        thread_id = await start_thread(alice, "What is 2+3?")
        call = await bob.next_call(timeout=15)
        assert call["params"]["arguments"] == {"a": 2, "b": 3}
        assert call["params"]["caller"]["identity"] == "assistant"
        await bob.answer(call, 5)
        message = await reply_from(alice)
        text, tool_call = message["parts"]
        assert text == {"type": "text", "text": "It is 5."}
        assert (tool_call["toolkit"], tool_call["tool"], tool_call["status"], tool_call["result"]) == (
            "calc",
            "add",
            "ok",
            5,
        )
        ended = await alice.expect(lambda m: m.get("method") == "threads.turn" and m["params"]["event"] == "ended")
        assert ended["params"]["data"]["status"] == "ok"
        streamed = [m["params"] for m in alice.inbox if m.get("method") == "threads.turn"]
        events = [event["event"] for event in streamed]
        assert events[0] == "started" and "tool_call_started" in events and "tool_call_ended" in events
        assert "".join(e["data"]["text"] for e in streamed if e["event"] == "text") == "It is 5."
        second = fake_openai.requests[1].messages
        assert second[0]["role"] == "system" and "Answer briefly." in second[0]["content"]
        assert second[-1]["role"] == "tool" and second[-1]["content"] == "5"
        assert {t["function"]["name"] for t in fake_openai.requests[0].tools} == {"calc__add"}
    records = await asyncio.to_thread(lambda: list(UsageRecord.objects.filter(project=project).order_by("id")))
    assert [(r.agent, r.thread_id, r.model) for r in records] == [("assistant", thread_id, "gpt-test")] * 2
    assert (records[1].input_tokens, records[1].output_tokens, records[1].cached_tokens) == (50, 5, 10)
    assert records[0].trace_id == records[1].trace_id != ""


async def test_without_a_model_configured_the_bot_says_what_to_set(ws_url, mint, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    bot = ChatBot(name="assistant", model="gpt-test")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(bot, ws_url("lobby"), agent_token(mint)),
    ):
        await start_thread(alice, "hello?")
        message = await reply_from(alice)
        assert "OPENAI_API_KEY" in message["parts"][0]["text"]


async def test_a_second_message_during_a_turn_is_queued_and_answered_next(ws_url, mint, fake_openai):
    fake_openai.reply("First answer", hold_after=2)
    fake_openai.reply("Second answer")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        thread_id = await start_thread(alice, "one")
        await alice.expect(lambda m: m.get("method") == "threads.turn" and m["params"]["event"] == "text", 15)
        await alice.invoke("threads", "post", {"thread_id": thread_id, "text": "two"})
        fake_openai.release()
        first = await reply_from(alice)
        second = await reply_from(alice)
        assert (first["parts"][0]["text"], first["seq"], first["reply_to"]) == ("First answer", 3, 1)
        assert (second["parts"][0]["text"], second["seq"], second["reply_to"]) == ("Second answer", 4, 2)
        # "two" was posted (seq 2) before the first answer (seq 3); the model still reads the
        # conversation as it went: one, its answer, two
        history = [(m["role"], m["content"]) for m in fake_openai.requests[1].messages if m["role"] != "system"]
        assert history == [("user", "one"), ("assistant", "First answer"), ("user", "two")]


async def test_a_turn_can_be_interrupted_and_keeps_what_it_said(ws_url, mint, fake_openai):
    fake_openai.reply("Partial words then more", hold_after=2)
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        thread_id = await start_thread(alice, "talk")
        await alice.expect(lambda m: m.get("method") == "threads.turn" and m["params"]["event"] == "text", 15)
        stopped = await alice.invoke("assistant", "interrupt", {"thread_id": thread_id})
        assert stopped["result"]["output"] == {"interrupted": True}
        message = await reply_from(alice)
        ended = await alice.expect(lambda m: m.get("method") == "threads.turn" and m["params"]["event"] == "ended")
        assert ended["params"]["data"]["status"] == "interrupted"
        assert message["parts"][0]["text"].startswith("Partial")
        fake_openai.release()


async def test_bad_model_output_becomes_a_clear_tool_result_and_the_turn_goes_on(ws_url, mint, fake_openai):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", "{not json"), ToolCall("nope__tool", {})])
    fake_openai.reply("Sorry, I could not compute that.")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        await bob.register("calc", [ADD_TOOL])
        await start_thread(alice, "add stuff")
        message = await reply_from(alice)
        statuses = [(p.get("tool"), p["status"]) for p in message["parts"] if p["type"] == "tool_call"]
        assert statuses == [("add", "error"), ("nope__tool", "error")]
        tool_results = [m["content"] for m in fake_openai.requests[1].messages if m["role"] == "tool"]
        assert "not valid JSON" in tool_results[0] and "no tool named" in tool_results[1]


async def test_an_upstream_failure_ends_the_turn_with_an_explained_error(ws_url, mint, fake_openai):
    fake_openai.error(500, "upstream exploded")
    fake_openai.error(500, "upstream exploded")
    fake_openai.error(500, "upstream exploded")
    fake_openai.error(500, "upstream exploded")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        await start_thread(alice, "hi")
        message = await reply_from(alice, timeout=30)
        assert "model failed" in message["parts"][0]["text"]
        ended = await alice.expect(lambda m: m.get("method") == "threads.turn" and m["params"]["event"] == "ended")
        assert ended["params"]["data"]["status"] == "error"


async def test_a_turn_over_a_hard_budget_is_refused_before_the_model_is_called(ws_url, mint, fake_openai, project):
    from decimal import Decimal

    from observability.models import Budget, ModelPrice

    await asyncio.to_thread(
        lambda: ModelPrice.objects.create(
            model="gpt-test", kind="llm", input_per_million=Decimal("1000"), output_per_million=Decimal("1000")
        )
    )
    await asyncio.to_thread(
        lambda: Budget.objects.create(project=project, amount=Decimal("0.0001"), period="day", hard=True)
    )
    fake_openai.reply("never sent")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        await start_thread(alice, "an expensive question")
        message = await reply_from(alice)
        assert "budget" in message["parts"][0]["text"]
        assert fake_openai.requests == []


@pytest.mark.redis  # the budget is created in this process: its notification reaches the server through Redis
async def test_without_budgets_turns_skip_the_reservation_until_a_budget_is_created(ws_url, mint, fake_openai, project):
    from decimal import Decimal

    from observability.models import Budget, ModelPrice, ToolCall

    def calls_of(tool: str) -> int:
        return ToolCall.objects.filter(project=project, toolkit="usage", tool=tool).count()

    async def ledger_has(tool: str, count: int) -> None:
        for _ in range(100):
            if await asyncio.to_thread(calls_of, tool) >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the ledger never showed {count} usage.{tool} call(s)")

    await asyncio.to_thread(
        lambda: ModelPrice.objects.create(
            model="gpt-test", kind="llm", input_per_million=Decimal("1000"), output_per_million=Decimal("1000")
        )
    )
    fake_openai.reply("one")
    fake_openai.reply("two")
    fake_openai.reply("never sent")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)),
    ):
        thread_id = await start_thread(alice, "first")
        assert (await reply_from(alice))["parts"][0]["text"] == "one"
        await alice.invoke("threads", "post", {"thread_id": thread_id, "text": "second"})
        assert (await reply_from(alice))["parts"][0]["text"] == "two"
        await ledger_has("record", 2)
        assert await asyncio.to_thread(calls_of, "reserve") == 1  # the second turn knew no budget applies

        await asyncio.to_thread(
            lambda: Budget.objects.create(project=project, amount=Decimal("0.0001"), period="day", hard=True)
        )
        changed = await alice.expect(lambda m: m.get("method") == "usage.budgets_changed")
        assert changed["params"]["scope"] == "project"
        await alice.invoke("threads", "post", {"thread_id": thread_id, "text": "third"})
        message = await reply_from(alice)
        assert "budget" in message["parts"][0]["text"]
        assert len(fake_openai.requests) == 2  # the upstream never saw the third question


async def test_a_thread_switches_on_the_toolkits_the_service_lets_threads_choose(ws_url, mint, fake_openai, project):
    fake_openai.reply("no tools here")
    fake_openai.reply("calc is on")
    fake_openai.reply("weather stays off")
    bot = assistant(fake_openai, tool_toolkits=[], thread_toolkits=["calc*"])
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        running(bot, ws_url("lobby"), agent_token(mint)),
    ):
        await bob.register("calc", [ADD_TOOL])
        await bob.register("weather", [{**ADD_TOOL, "name": "forecast"}])
        await start_thread(alice, "plain thread")
        await reply_from(alice)
        created = await alice.invoke("threads", "create", {"title": "Sums", "toolkits": ["calc", "weather"]})
        sums = created["result"]["output"]["thread"]["id"]
        await alice.invoke("threads", "post", {"thread_id": sums, "text": "2+3?"})
        await reply_from(alice)
        # switched off again while the bot already knows the thread: it follows threads.updated
        await alice.invoke("threads", "configure", {"thread_id": sums, "toolkits": []})
        await alice.expect(lambda m: m.get("method") == "threads.updated")
        await alice.invoke("threads", "post", {"thread_id": sums, "text": "and now?"})
        await reply_from(alice)
    offered = [sorted(tool["function"]["name"] for tool in request.tools) for request in fake_openai.requests]
    # `weather` is in the thread's list but not among those the service lets a thread choose
    assert offered == [[], ["calc__add"], []]
