"""The Agents API (`agents` toolkit) with a real server, a real agent host process and real clients."""

import asyncio
import time

import pytest

from observability.models import ToolCall
from tests.support.peer import ADD_TOOL, RawPeer
from tests.support.servers import AgentHostProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def call_agent(peer: RawPeer, name: str, **extra) -> dict:
    return await peer.invoke("agents", "call", {"name": name, **extra}, timeout=20)


async def test_call_invites_a_service_that_joins_as_an_agent(ws_url, mint, agent_host):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        called = (await call_agent(alice, "word-counter"))["result"]["output"]
        assert (called["status"], called["identity"], called["created"]) == ("running", "word-counter", True)
        joined = await alice.notification("participant.joined")
        assert joined["participant"]["role"] == "agent"
        assert joined["participant"]["id"] == called["participant_id"]
        assert joined["participant"]["attributes"]["agent"]["name"] == "word-counter"


async def test_calling_the_same_agent_twice_does_not_start_a_duplicate(ws_url, mint, agent_host):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        first = (await call_agent(alice, "word-counter"))["result"]["output"]
        second = (await call_agent(alice, "word-counter"))["result"]["output"]
        assert second["created"] is False
        assert second["participant_id"] == first["participant_id"]
        listed = (await alice.invoke("participants", "list"))["result"]["output"]["participants"]
        assert [p["identity"] for p in listed].count("word-counter") == 1


async def test_ask_returns_the_agents_validated_answer(ws_url, mint, agent_host):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        await call_agent(alice, "word-counter")
        asked = await alice.invoke("agents", "ask", {"agent": "word-counter", "arguments": {"text": "one two three"}})
        assert asked["result"]["output"] == {"words": 3, "characters": 13}
        # A TaskRunner is also a toolkit tool, so an LLM can use another agent as a tool.
        direct = await alice.invoke("word-counter", "ask", {"text": "four"})
        assert direct["result"]["output"] == {"words": 1, "characters": 4}
        refused = await alice.invoke("agents", "ask", {"agent": "word-counter", "arguments": {"text": 4}})
        assert refused["error"]["code"] == -32003


async def test_asking_an_agent_that_is_not_in_the_room_is_explained(ws_url, mint, agent_host):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        response = await alice.invoke("agents", "ask", {"agent": "word-counter", "arguments": {"text": "x"}})
        assert response["error"]["code"] == -32002
        assert "agents.call" in response["error"]["message"]
        unknown = await call_agent(alice, "no-such-service")
        assert unknown["error"]["code"] == -32002


async def test_list_shows_callable_services_and_present_agents_with_schemas(ws_url, mint, agent_host):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        await call_agent(alice, "word-counter")
        agents = {a["name"]: a for a in (await alice.invoke("agents", "list"))["result"]["output"]["agents"]}
        counter = agents["word-counter"]
        assert (counter["present"], counter["callable"], counter["title"]) == (True, True, "Word counter")
        assert counter["input_schema"]["examples"] == [{"text": "The quick brown fox jumps over the lazy dog"}]
        assert counter["output_schema"]["required"] == ["words", "characters"]
        assert agents["slow"]["present"] is False and agents["slow"]["callable"] is True


async def test_list_toolkits_and_invoke_tool_reach_any_tool(ws_url, mint, agent_host):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        names = [t["name"] for t in (await alice.invoke("agents", "list_toolkits"))["result"]["output"]["toolkits"]]
        assert {"agents", "messaging", "calc"} <= set(names)
        invoked = asyncio.create_task(
            alice.invoke("agents", "invoke_tool", {"toolkit": "calc", "tool": "add", "arguments": {"a": 1, "b": 2}})
        )
        call = await bob.next_call()
        assert call["params"]["caller"]["identity"] == "alice"
        await bob.answer(call, 3)
        assert (await invoked)["result"]["output"] == 3


async def test_a_dispatch_nobody_picks_up_times_out_with_a_clear_error(ws_url, mint, services):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        response = await alice.invoke("agents", "call", {"name": "word-counter", "timeout": 1})
        assert response["error"]["code"] == -32004
        assert "no agent host picked up" in response["error"]["message"]


async def test_an_agent_that_raises_in_ask_answers_with_an_error_and_stays(ws_url, mint, agent_host):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        await call_agent(alice, "flaky")
        failed = await alice.invoke("agents", "ask", {"agent": "flaky", "arguments": {"text": "boom"}})
        assert failed["error"]["code"] == -32009
        assert "exploded on purpose" in failed["error"]["message"]
        fine = await alice.invoke("agents", "ask", {"agent": "flaky", "arguments": {"text": "hi"}})
        assert fine["result"]["output"] == {"echo": "hi"}


async def test_an_agent_that_fails_to_start_does_not_take_down_the_host(ws_url, mint, agent_host):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        broken = await call_agent(alice, "broken")
        assert broken["error"]["code"] == -32009
        assert "missing credentials" in broken["error"]["message"]
        assert (await call_agent(alice, "flaky"))["result"]["output"]["status"] == "running"
        answered = await alice.invoke("agents", "ask", {"agent": "flaky", "arguments": {"text": "still up"}})
        assert answered["result"]["output"] == {"echo": "still up"}


async def test_a_gracefully_stopped_host_finishes_in_flight_asks_first(ws_url, mint, server, services):
    host = AgentHostProcess(server).start()
    try:
        async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
            await call_agent(alice, "slow")
            asking = asyncio.create_task(
                alice.invoke("agents", "ask", {"agent": "slow", "arguments": {"seconds": 1.5}}, timeout=20)
            )
            await asyncio.sleep(0.5)
            stopping = asyncio.create_task(asyncio.to_thread(host.stop))
            assert (await asking)["result"]["output"] == {"slept": 1.5}
            left = await alice.notification("participant.left", timeout=10)
            assert left["identity"] == "slow"
            assert await stopping == 0
    finally:
        host.kill()


async def test_a_killed_hosts_agents_leave_and_their_pending_calls_fail(ws_url, mint, server, services):
    host = AgentHostProcess(server).start()
    try:
        async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
            await call_agent(alice, "slow")
            asking = asyncio.create_task(
                alice.invoke("agents", "ask", {"agent": "slow", "arguments": {"seconds": 30}}, timeout=60)
            )
            await asyncio.sleep(0.5)
            started = time.monotonic()
            host.kill()
            response = await asyncio.wait_for(asking, 10)
            assert response["error"]["code"] == -32005
            assert time.monotonic() - started < 5
            assert (await alice.notification("participant.left"))["identity"] == "slow"
    finally:
        host.kill()


async def test_an_ask_and_the_tool_calls_it_causes_share_one_trace(ws_url, mint, agent_host, project):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        await call_agent(alice, "delegating")
        trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        asking = asyncio.create_task(
            alice.invoke(
                "agents", "ask", {"agent": "delegating", "arguments": {"a": 2, "b": 5}}, _meta={"traceparent": trace}
            )
        )
        call = await bob.next_call()
        assert call["params"]["caller"]["identity"] == "delegating"
        assert call["params"]["on_behalf_of"]["identity"] == "alice"
        await bob.answer(call, 7)
        assert (await asking)["result"]["output"] == {"sum": 7}

    def rows() -> list[ToolCall]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = list(ToolCall.objects.filter(project=project, trace_id="0af7651916cd43dd8448eb211c80319c"))
            if len(found) >= 3:
                return found
            time.sleep(0.05)
        return list(ToolCall.objects.filter(project=project))

    by_tool = {f"{r.toolkit}.{r.tool}": r for r in await asyncio.to_thread(rows)}
    assert set(by_tool) == {"agents.ask", "delegating.ask", "calc.add"}
    assert by_tool["agents.ask"].caller_identity == "alice"
    assert (by_tool["delegating.ask"].caller_identity, by_tool["delegating.ask"].host_identity) == (
        "alice",
        "delegating",
    )
    assert (by_tool["calc.add"].caller_identity, by_tool["calc.add"].on_behalf_of_identity) == ("delegating", "alice")
