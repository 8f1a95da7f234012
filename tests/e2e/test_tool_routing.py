"""A participant registers a toolkit, another discovers and invokes it, over a real daphne server."""

import asyncio

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import ADD_TOOL, RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_a_call_reaches_the_host_and_its_answer_reaches_the_caller(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        registered = await bob.register("calc", [ADD_TOOL])
        assert registered["result"]["toolkit"]["participant_id"] == bob.id
        changed = await alice.notification("toolkits.changed")
        assert changed["action"] == "registered" and changed["toolkit"]["name"] == "calc"

        listed = await alice.result("toolkits.list")
        assert {"messaging", "participants", "calc"} <= {t["name"] for t in listed["toolkits"]}

        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 2, "b": 3}, call_id="c1"))
        call = await bob.next_call()
        assert call["params"]["caller"]["identity"] == "alice"
        assert call["params"]["arguments"] == {"a": 2, "b": 3}
        assert call["params"]["on_behalf_of"] is None
        await bob.answer(call, 5)
        assert (await invoke)["result"] == {"call_id": "c1", "output": 5}


async def test_the_server_refuses_arguments_that_violate_the_schema_before_routing(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        response = await alice.invoke("calc", "add", {"a": "two"})
        assert response["error"]["code"] == ErrorCode.INVALID_ARGUMENTS
        assert {"path": "/a", "message": "'two' is not of type 'number'"} in response["error"]["data"]["errors"]
        with pytest.raises(TimeoutError):
            await bob.next_call(timeout=0.3)


async def test_output_that_violates_the_output_schema_is_an_error_to_the_caller(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}))
        await bob.answer(await bob.next_call(), "two")
        error = (await invoke)["error"]
        assert error["code"] == ErrorCode.TOOL_FAILED
        assert "output_schema" in error["message"]


async def test_a_host_error_is_relayed_as_tool_failed(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}))
        call = await bob.next_call()
        await bob.send({"jsonrpc": "2.0", "id": call["id"], "error": {"code": 1, "message": "overflow"}})
        error = (await invoke)["error"]
        assert error["code"] == ErrorCode.TOOL_FAILED
        assert error["data"]["message"] == "overflow"


async def test_progress_reaches_the_caller_with_its_own_call_id(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, call_id="mine"))
        call = await bob.next_call()
        await bob.send(
            {
                "jsonrpc": "2.0",
                "method": "tools.progress",
                "params": {"call_id": call["params"]["call_id"], "progress": {"percent": 50}},
            }
        )
        assert await alice.notification("tools.progress") == {"call_id": "mine", "progress": {"percent": 50}}
        await bob.answer(call, 2)
        assert (await invoke)["result"]["output"] == 2


async def test_cancel_ends_the_call_and_tells_the_host(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, call_id="slow"))
        call = await bob.next_call()
        assert (await alice.result("tools.cancel", {"call_id": "slow"})) == {"cancelled": True}
        assert (await invoke)["error"]["code"] == ErrorCode.CANCELLED
        cancelled = await bob.notification("tools.cancelled")
        assert cancelled == {"call_id": call["params"]["call_id"], "reason": "cancelled"}
        # A late answer is dropped; the caller's connection keeps working.
        await bob.answer(call, 2)
        assert (await alice.result("ping"))["pong"] is True


async def test_a_caller_timeout_ends_the_call_and_tells_the_host(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        response = await alice.invoke("calc", "add", {"a": 1, "b": 1}, timeout=0.3)
        assert response["error"]["code"] == ErrorCode.TIMEOUT
        assert (await bob.notification("tools.cancelled"))["reason"] == "timeout"


async def test_a_host_that_disconnects_fails_its_pending_calls_at_once(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        bob = await RawPeer.connect(ws_url("lobby"), mint("bob"))
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, timeout=30))
        await bob.next_call()
        await bob.ws.close()
        response = await asyncio.wait_for(invoke, 5)
        assert response["error"]["code"] == ErrorCode.PARTICIPANT_GONE
        assert "bob" in response["error"]["message"]
        assert (await alice.notification("participant.left"))["identity"] == "bob"
        # Its toolkit is gone with it.
        assert (await alice.invoke("calc", "add", {"a": 1, "b": 1}))["error"]["code"] == ErrorCode.NOT_FOUND


async def test_a_private_toolkit_is_only_reached_by_naming_its_host(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("ui", [ADD_TOOL], public=False)
        refused = await alice.invoke("ui", "add", {"a": 1, "b": 1})
        assert refused["error"]["code"] == ErrorCode.PERMISSION_DENIED
        assert "participant_id" in refused["error"]["message"]
        invoke = asyncio.create_task(alice.invoke("ui", "add", {"a": 1, "b": 1}, participant_id=bob.id))
        await bob.answer(await bob.next_call(), 2)
        assert (await invoke)["result"]["output"] == 2
        listed = await alice.result("toolkits.list", {"participant_id": bob.id})
        assert [t["name"] for t in listed["toolkits"]] == ["ui"]


async def test_two_hosts_may_each_have_a_private_toolkit_of_the_same_name(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        assert "result" in await bob.register("ui", [ADD_TOOL], public=False)
        assert "result" in await alice.register("ui", [ADD_TOOL], public=False)


async def test_a_taken_public_name_or_a_builtin_name_is_a_conflict(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        assert (await alice.register("calc", [ADD_TOOL]))["error"]["code"] == ErrorCode.CONFLICT
        assert (await alice.register("messaging", [ADD_TOOL]))["error"]["code"] == ErrorCode.CONFLICT


async def test_an_invalid_schema_is_refused_at_registration(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        bad = {**ADD_TOOL, "input_schema": {"type": "nonsense"}}
        error = (await bob.register("calc", [bad]))["error"]
        assert error["code"] == ErrorCode.INVALID_PARAMS
        assert "not a valid JSON Schema" in error["message"]


async def test_unregister_removes_the_toolkit_for_everyone(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        await alice.notification("toolkits.changed")
        assert await bob.result("toolkits.unregister", {"name": "calc"}) == {"unregistered": True}
        assert (await alice.notification("toolkits.changed"))["action"] == "unregistered"
        assert (await alice.invoke("calc", "add", {"a": 1, "b": 1}))["error"]["code"] == ErrorCode.NOT_FOUND
        assert (await bob.request("toolkits.unregister", {"name": "calc"}))["error"]["code"] == ErrorCode.NOT_FOUND
