"""Hosting tools: answering tools.call, cancellation, context and tracing (fake server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from meshsite_client import ConnectionLost, RoomClient, ToolContext, Toolkit, tool

from .fake_room import CALC, TRACEPARENT, FakeRoom, tools_call


@pytest.mark.asyncio
async def test_it_hosts_tools_and_answers_tools_call() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        info = await room.register_toolkit(CALC)
        assert info.participant_id == "p_1"
        assert any(t.name == "calc" and t.participant_id == "p_1" for t in room.toolkits)
        conn = server.connections[0]
        await conn.send(tools_call("k_1", "calc", "add", {"a": 1, "b": 2}))
        answer = await server.next_answer()
        assert answer == {"jsonrpc": "2.0", "id": "k_1", "result": 3.0}


@pytest.mark.asyncio
async def test_a_failing_tool_answers_tool_failed_with_the_exception() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        await room.register_toolkit(CALC)
        conn = server.connections[0]
        await conn.send(tools_call("k_2", "calc", "explode", {"message": "boom"}))
        answer = await server.next_answer()
        assert answer["id"] == "k_2"
        assert answer["error"] == {
            "code": -32009,
            "message": "boom",
            "data": {"type": "tool_failed", "exception": "LookupError"},
        }


@pytest.mark.asyncio
async def test_it_answers_not_found_for_unknown_tools_and_method_not_found_for_unknown_requests() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        await room.register_toolkit(CALC)
        conn = server.connections[0]
        await conn.send(tools_call("k_3", "nope", "add", {}))
        answer = await server.next_answer()
        assert answer["error"]["code"] == -32002
        await conn.send(tools_call("k_4", "calc", "nope", {}))
        answer = await server.next_answer()
        assert answer["error"]["code"] == -32002
        await conn.send({"id": 99, "method": "something.else", "params": {}})
        answer = await server.next_answer()
        assert answer["id"] == 99 and answer["error"]["code"] == -32601


@pytest.mark.asyncio
async def test_tools_cancelled_stops_the_handler_and_sends_nothing() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        await room.register_toolkit(CALC)
        conn = server.connections[0]
        await conn.send(tools_call("k_5", "calc", "slow", {"seconds": 30}))
        _, progress = await server.next_frame("tools.progress")
        assert progress["params"] == {"call_id": "k_5", "progress": {"percent": 10}}
        assert "k_5" in room._host.running
        await conn.notify("tools.cancelled", {"call_id": "k_5", "reason": "cancelled"})
        await asyncio.sleep(0.05)
        assert room._host.running == []
        with pytest.raises(TimeoutError):
            await server.next_answer(timeout=0.2)


@pytest.mark.asyncio
async def test_a_handler_gets_its_context_and_nested_invokes_keep_the_trace() -> None:
    seen: dict[str, Any] = {}

    @tool
    async def relay(ctx: ToolContext) -> Any:
        seen["ctx"] = ctx
        return await ctx.room.invoke("weather", "forecast", {"city": "Porto"})

    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        await room.register_toolkit(Toolkit("relay", [relay]))
        conn = server.connections[0]
        await conn.send(tools_call("k_6", "relay", "relay", {}))
        _, nested = await server.next_frame("tools.invoke")
        assert nested["params"]["_meta"] == {"traceparent": TRACEPARENT}
        await conn.answer(nested, {"call_id": nested["params"]["call_id"], "output": "sunny"})
        answer = await server.next_answer()
        assert answer == {"jsonrpc": "2.0", "id": "k_6", "result": "sunny"}
        ctx = seen["ctx"]
        assert (ctx.call_id, ctx.toolkit, ctx.tool) == ("k_6", "relay", "relay")
        assert ctx.caller["identity"] == "bob"
        assert ctx.on_behalf_of is None
        assert ctx.deadline is not None and ctx.deadline.year == 2099
        assert ctx.room is room


@pytest.mark.asyncio
async def test_closing_the_client_cancels_running_tool_handlers() -> None:
    async with FakeRoom() as server:
        room = await RoomClient(server.url, "t").connect()
        await room.register_toolkit(CALC)
        await server.connections[0].send(tools_call("k_7", "calc", "slow", {"seconds": 30}))
        await server.next_frame("tools.progress")
        assert room._host.running == ["k_7"]
        await room.close()
        assert room._host.running == []
        assert room.closed
        with pytest.raises(ConnectionLost, match="closed"):
            await room.ping()


@pytest.mark.asyncio
async def test_unregister_forgets_the_toolkit() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        await room.register_toolkit(CALC)
        assert await room.unregister_toolkit("calc") is True
        assert "calc" not in room.hosted_toolkits
        assert not any(t.name == "calc" for t in room.toolkits)
        await server.connections[0].send(tools_call("k_8", "calc", "add", {"a": 1, "b": 1}))
        answer = await server.next_answer()
        assert answer.get("error", {}).get("code") == -32002


@pytest.mark.asyncio
async def test_sync_handlers_run_in_a_thread_and_can_report_progress() -> None:
    @tool
    def crunch(n: int, ctx: ToolContext) -> int:
        ctx.progress_threadsafe({"step": 1})
        return n * 2

    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        await room.register_toolkit(Toolkit("cpu", [crunch]))
        await server.connections[0].send(tools_call("k_9", "cpu", "crunch", {"n": 21}))
        _, progress = await server.next_frame("tools.progress")
        assert progress["params"] == {"call_id": "k_9", "progress": {"step": 1}}
        assert await server.next_answer() == {"jsonrpc": "2.0", "id": "k_9", "result": 42}
