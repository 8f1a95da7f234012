"""Caller and host on two daphne processes sharing Postgres (or the test SQLite file) and Redis."""

import asyncio

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import ADD_TOOL, RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.asyncio]


async def test_a_call_crosses_nodes_both_ways(two_nodes, mint):
    node_a, node_b = two_nodes
    async with (
        await RawPeer.connect(node_b.ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice,
    ):
        assert {p["identity"] for p in alice.ready["participants"]} == {"alice", "bob"}
        await bob.register("calc", [ADD_TOOL])
        await alice.notification("toolkits.changed")
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 20, "b": 22}, call_id="x"))
        call = await bob.next_call()
        await bob.send(
            {
                "jsonrpc": "2.0",
                "method": "tools.progress",
                "params": {"call_id": call["params"]["call_id"], "progress": "half"},
            }
        )
        assert (await alice.notification("tools.progress"))["progress"] == "half"
        await bob.answer(call, 42)
        assert (await invoke)["result"] == {"call_id": "x", "output": 42}


async def test_a_toolkit_registered_on_another_node_is_callable_at_once(two_nodes, mint):
    node_a, node_b = two_nodes
    async with (
        await RawPeer.connect(node_b.ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        # No waiting for toolkits.changed: a cache miss on node A falls back to the database.
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}))
        await bob.answer(await bob.next_call(), 2)
        assert (await invoke)["result"]["output"] == 2


async def test_cancel_and_timeout_reach_a_host_on_another_node(two_nodes, mint):
    node_a, node_b = two_nodes
    async with (
        await RawPeer.connect(node_b.ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, call_id="c"))
        await bob.next_call()
        await alice.result("tools.cancel", {"call_id": "c"})
        assert (await invoke)["error"]["code"] == ErrorCode.CANCELLED
        assert (await bob.notification("tools.cancelled"))["reason"] == "cancelled"
        timed_out = await alice.invoke("calc", "add", {"a": 1, "b": 1}, timeout=0.3)
        assert timed_out["error"]["code"] == ErrorCode.TIMEOUT
        assert (await bob.notification("tools.cancelled"))["reason"] == "timeout"


async def test_a_host_leaving_on_another_node_fails_the_call_at_once(two_nodes, mint):
    node_a, node_b = two_nodes
    async with await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice:
        bob = await RawPeer.connect(node_b.ws_url("lobby"), mint("bob"))
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, timeout=30))
        await bob.next_call()
        await bob.ws.close()
        response = await asyncio.wait_for(invoke, 5)
        assert response["error"]["code"] == ErrorCode.PARTICIPANT_GONE


async def test_messages_and_presence_cross_nodes(two_nodes, mint):
    node_a, node_b = two_nodes
    async with await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice:
        async with await RawPeer.connect(node_b.ws_url("lobby"), mint("bob")) as bob:
            assert (await alice.notification("participant.joined"))["participant"]["id"] == bob.id
            await alice.invoke("messaging", "send", {"to": bob.id, "type": "chat", "message": "direct"})
            assert (await bob.notification("messaging.message"))["message"] == "direct"
            await bob.invoke("messaging", "broadcast", {"type": "chat", "message": "all"})
            assert (await alice.notification("messaging.message"))["message"] == "all"
            await bob.result("participant.set_attributes", {"attributes": {"mood": "ok"}})
            assert (await alice.notification("participant.updated"))["participant"]["attributes"] == {"mood": "ok"}
        assert (await alice.notification("participant.left"))["identity"] == "bob"


async def test_a_singleton_identity_on_another_node_replaces_the_first_connection(two_nodes, mint):
    node_a, node_b = two_nodes
    first = await RawPeer.connect(node_a.ws_url("lobby"), mint("alice", singleton=True))
    second = await RawPeer.connect(node_b.ws_url("lobby"), mint("alice", singleton=True))
    assert (await first.notification("connection.closing"))["code"] == 4409
    assert (await second.result("ping"))["pong"] is True
    await second.ws.close()
