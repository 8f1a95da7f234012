"""Malformed and hostile traffic gets a documented error; everyone else is unaffected."""

import asyncio
import json

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import ADD_TOOL, RawPeer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_malformed_frames_get_standard_json_rpc_errors(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        cases = [
            ("not json", None, -32700),
            ("[1, 2]", None, -32600),
            (json.dumps({"id": 1, "method": "ping"}), None, -32600),
            (json.dumps({"jsonrpc": "2.0", "id": [1], "method": "ping"}), None, -32600),
            (json.dumps({"jsonrpc": "2.0", "id": 7, "method": 42}), 7, -32600),
            (json.dumps({"jsonrpc": "2.0", "id": 8, "method": "no.such.method"}), 8, -32601),
            (json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools.invoke", "params": [1]}), 9, -32602),
            (json.dumps({"jsonrpc": "2.0", "id": 10, "method": "tools.invoke", "params": {"toolkit": 1}}), 10, -32602),
        ]
        for frame, expected_id, code in cases:
            await alice.send(frame)
            response = await alice.expect(lambda m: "error" in m)
            assert (response["id"], response["error"]["code"]) == (expected_id, code), frame
            assert response["error"]["data"]["type"]
        assert (await alice.result("ping"))["pong"] is True


async def test_a_binary_frame_is_refused(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        await alice.ws.send(b"\x00\x01")
        assert (await alice.expect(lambda m: "error" in m))["error"]["code"] == ErrorCode.INVALID_REQUEST


async def test_an_oversized_frame_closes_that_connection_with_1009_only(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        alice = await RawPeer.connect(ws_url("lobby"), mint("alice"), max_size=None)
        huge = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * (1024 * 1024 + 10)}})
        await alice.send(huge)
        await alice.ws.wait_closed()
        assert alice.ws.close_code == 1009
        assert (await bob.notification("participant.left"))["identity"] == "alice"
        assert (await bob.result("ping"))["pong"] is True


async def test_unknown_params_fields_and_wrong_types_are_explained(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        bad_timeout = await alice.invoke("participants", "list", {}, timeout=-1)
        assert bad_timeout["error"]["code"] == ErrorCode.INVALID_PARAMS
        no_such_tool = await alice.invoke("participants", "explode")
        assert no_such_tool["error"]["code"] == ErrorCode.NOT_FOUND
        extra_argument = await alice.invoke("participants", "list", {"surprise": 1})
        assert extra_argument["error"]["code"] == ErrorCode.INVALID_ARGUMENTS
        assert (await alice.request("toolkits.register", {"name": "9bad", "tools": [ADD_TOOL]}))["error"][
            "code"
        ] == ErrorCode.INVALID_PARAMS
        assert (await alice.request("toolkits.register", {"name": "empty", "tools": []}))["error"][
            "code"
        ] == ErrorCode.INVALID_PARAMS
        attributes = await alice.request("participant.set_attributes", {"attributes": "nope"})
        assert attributes["error"]["code"] == ErrorCode.INVALID_PARAMS


async def test_impersonation_without_the_grant_is_refused(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("mallory")) as mallory,
    ):
        await bob.register("calc", [ADD_TOOL])
        response = await mallory.invoke("calc", "add", {"a": 1, "b": 1}, on_behalf_of_id=bob.id)
        assert response["error"]["code"] == ErrorCode.PERMISSION_DENIED
        assert "impersonate" in response["error"]["message"]


async def test_a_service_may_act_on_behalf_of_a_participant(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("ops", role="service")) as ops,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(ops.invoke("calc", "add", {"a": 1, "b": 1}, on_behalf_of_id=alice.id))
        call = await bob.next_call()
        assert call["params"]["caller"]["identity"] == "ops"
        assert call["params"]["on_behalf_of"]["identity"] == "alice"
        await bob.answer(call, 2)
        assert (await invoke)["result"]["output"] == 2


async def test_an_agent_may_act_for_the_participant_whose_call_it_is_serving(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("helper", role="agent")) as agent,
    ):
        await bob.register("calc", [ADD_TOOL])
        await agent.register("assistant", [{**ADD_TOOL, "name": "solve"}])
        asked = asyncio.create_task(alice.invoke("assistant", "solve", {"a": 1, "b": 2}))
        serving = await agent.next_call()
        # While serving alice, the agent calls bob's tool on her behalf.
        nested = asyncio.create_task(agent.invoke("calc", "add", {"a": 1, "b": 2}, on_behalf_of_id=alice.id))
        call = await bob.next_call()
        assert call["params"]["on_behalf_of"]["identity"] == "alice"
        await bob.answer(call, 3)
        assert (await nested)["result"]["output"] == 3
        await agent.answer(serving, 3)
        assert (await asked)["result"]["output"] == 3
        # Once the call is answered the agent may no longer act for her.
        late = await agent.invoke("calc", "add", {"a": 1, "b": 2}, on_behalf_of_id=alice.id)
        assert late["error"]["code"] == ErrorCode.PERMISSION_DENIED


async def test_an_answer_from_a_participant_the_call_was_not_sent_to_is_dropped(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("mallory")) as mallory,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}))
        call = await bob.next_call()
        await mallory.answer(call, 999)
        await asyncio.sleep(0.2)
        await bob.answer(call, 2)
        assert (await invoke)["result"]["output"] == 2


async def test_grants_limit_what_a_participant_may_invoke_and_register(ws_url, mint):
    token = mint("charlie", grants={"toolkits": {"invoke": ["participants.*"], "register": []}, "messaging": False})
    async with await RawPeer.connect(ws_url("lobby"), token) as charlie:
        assert [t["name"] for t in charlie.ready["toolkits"]] == ["participants"]
        assert "result" in await charlie.invoke("participants", "list")
        assert (await charlie.invoke("messaging", "broadcast", {"type": "t", "message": 1}))["error"][
            "code"
        ] == ErrorCode.PERMISSION_DENIED
        assert (await charlie.register("calc", [ADD_TOOL]))["error"]["code"] == ErrorCode.PERMISSION_DENIED


async def test_a_flood_is_rate_limited_and_then_closed_while_others_are_served(server, mint):
    flood_server = ServerProcess(
        redis_url=server.env["REDIS_URL"] or None,
        env={"MESHSITE_RATE_PER_SECOND": "5", "MESHSITE_RATE_BURST": "5", "MESHSITE_FLOOD_CLOSE_AFTER": "50"},
    ).start()
    try:
        async with await RawPeer.connect(flood_server.ws_url("lobby"), mint("bob")) as bob:
            flooder = await RawPeer.connect(flood_server.ws_url("lobby"), mint("mallory"))
            for index in range(60):
                await flooder.send({"jsonrpc": "2.0", "id": index, "method": "ping"})
            limited = await flooder.expect(lambda m: m.get("error", {}).get("code") == ErrorCode.RATE_LIMITED)
            assert limited["error"]["data"]["retry_after"] > 0
            notice = await flooder.notification("connection.closing")
            assert notice["code"] == 4429
            assert (await bob.result("ping"))["pong"] is True
    finally:
        flood_server.stop()
