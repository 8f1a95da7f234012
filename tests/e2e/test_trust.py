"""Who a participant is, and what its grants let it see and do, come from the server alone."""

import asyncio

import pytest
from meshsite_client.protocol import ErrorCode

from agents.actions import do_create_service
from observability.models import ToolCall
from tests.e2e.test_ledger import rows_when
from tests.support.peer import ADD_TOOL, RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ASK_TOOL = {"name": "ask", "input_schema": {"type": "object"}}


def code_of(response: dict) -> int:
    assert "error" in response, response
    return response["error"]["code"]


async def test_a_participant_that_says_it_is_an_agent_receives_no_asks(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("mallory")) as mallory,
    ):
        await mallory.result("participant.set_attributes", {"attributes": {"agent": {"name": "helper"}}})
        await mallory.register("helper", [ASK_TOOL], public=False)
        response = await alice.invoke("agents", "ask", {"agent": "helper", "arguments": {}})
        assert code_of(response) == ErrorCode.NOT_FOUND
        listed = await alice.result("tools.invoke", {"toolkit": "agents", "tool": "list"})
        assert "helper" not in [agent["name"] for agent in listed["output"]["agents"]]


async def test_the_agent_its_token_vouches_for_answers_asks_with_one_grant(ws_url, mint):
    grants = {"toolkits": {"invoke": ["agents.ask", "agents.list"], "register": []}, "agents": {"ask": ["helper"]}}
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice", grants=grants)) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("helper", role="agent", agent="helper")) as helper,
    ):
        assert helper.ready["participant"]["agent"] == "helper"
        await helper.register("helper", [ASK_TOOL], public=False)
        asked = asyncio.create_task(alice.invoke("agents", "ask", {"agent": "helper", "arguments": {"q": 1}}))
        call = await helper.next_call()
        assert call["params"]["caller"]["identity"] == "alice"
        await helper.answer(call, {"answer": 42})
        assert (await asked)["result"]["output"] == {"answer": 42}
        listed = await alice.result("tools.invoke", {"toolkit": "agents", "tool": "list"})
        entry = next(agent for agent in listed["output"]["agents"] if agent["name"] == "helper")
        assert (entry["present"], entry["participant_id"]) == (True, helper.id)


async def test_a_services_name_is_reserved_for_its_own_instances(ws_url, mint, project):
    await asyncio.to_thread(do_create_service, project, "word-counter", class_path="agents.demo.WordCounter")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("mallory")) as mallory,
        await RawPeer.connect(ws_url("lobby"), mint("word-counter", role="agent", agent="word-counter")) as agent,
    ):
        for name, public in (("word-counter", True), ("Word-Counter", False)):
            assert code_of(await mallory.register(name, [ASK_TOOL], public=public)) == ErrorCode.CONFLICT
        assert "result" in await agent.register("word-counter", [ASK_TOOL])


async def test_built_in_names_are_reserved_whatever_their_case_and_dotted_names_are_refused(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("mallory")) as mallory:
        for name in ("Messaging", "AGENTS", "storage", "threads"):
            assert code_of(await mallory.register(name, [ADD_TOOL])) == ErrorCode.CONFLICT, name
        # a toolkit named "agents.ask" would match the grant pattern of the built-in tool
        for name in ("agents.ask", "agents.x", "calc.add"):
            assert code_of(await mallory.register(name, [ADD_TOOL])) == ErrorCode.INVALID_PARAMS, name


async def test_a_token_that_may_not_list_participants_sees_no_presence(ws_url, mint):
    blind = {"toolkits": {"invoke": ["messaging.*"], "register": []}}
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("charlie", grants=blind)) as charlie,
    ):
        assert [p["identity"] for p in charlie.ready["participants"]] == ["charlie"]
        await bob.result("participant.set_attributes", {"attributes": {"secret": "plans"}})
        async with await RawPeer.connect(ws_url("lobby"), mint("alice")):
            await bob.notification("participant.joined")
        await bob.notification("participant.left")
        assert (await charlie.result("ping"))["pong"] is True
        presence = [m for m in charlie.inbox if str(m.get("method", "")).startswith("participant.")]
        assert presence == []
        response = await charlie.invoke("participants", "list")
        assert code_of(response) == ErrorCode.PERMISSION_DENIED


async def test_a_private_toolkit_is_listed_and_invoked_by_addressing_its_host(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("ui", [ADD_TOOL], public=False)
        listed = await alice.result("toolkits.list")
        assert any(t["name"] == "ui" and t["participant_id"] == bob.id and not t["public"] for t in listed["toolkits"])
        unaddressed = await alice.invoke("ui", "add", {"a": 1, "b": 1})
        assert code_of(unaddressed) == ErrorCode.PERMISSION_DENIED
        addressed = asyncio.create_task(alice.invoke("ui", "add", {"a": 1, "b": 1}, participant_id=bob.id))
        await bob.answer(await bob.next_call(), 2)
        assert (await addressed)["result"]["output"] == 2


async def test_calls_refused_before_routing_are_in_the_ledger(ws_url, mint, project):
    no_messaging = {"toolkits": {"invoke": ["participants.*", "calc.*"], "register": []}}
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("mallory", grants=no_messaging)) as mallory,
    ):
        await bob.register("calc", [ADD_TOOL])
        refused = [
            (await mallory.invoke("messaging", "broadcast", {"type": "t", "message": 1}), ErrorCode.PERMISSION_DENIED),
            (await mallory.invoke("calc", "add", {"a": "one"}), ErrorCode.INVALID_ARGUMENTS),
            (await mallory.invoke("calc", "nope"), ErrorCode.NOT_FOUND),
            (await mallory.invoke("calc", "add", {"a": 1, "b": 1}, timeout=-1), ErrorCode.INVALID_PARAMS),
        ]
        assert [code_of(response) for response, _ in refused] == [code for _, code in refused]
    rows = await asyncio.to_thread(
        rows_when, len(refused), project=project, caller_identity="mallory", status=ToolCall.Status.REFUSED
    )
    assert sorted((row.toolkit, row.tool, row.error_code) for row in rows) == sorted(
        [
            ("messaging", "broadcast", ErrorCode.PERMISSION_DENIED),
            ("calc", "add", ErrorCode.INVALID_ARGUMENTS),
            ("calc", "nope", ErrorCode.NOT_FOUND),
            ("calc", "add", ErrorCode.INVALID_PARAMS),
        ]
    )
    assert all(row.error_message for row in rows)
