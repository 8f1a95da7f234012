"""RoomClient against a scripted in-process fake server (no Meshsite server needed)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from meshsite_client import (
    AuthError,
    Cancelled,
    ConnectionLost,
    NotFound,
    RoomClient,
    Timeout,
    ToolFailed,
    new_traceparent,
)
from meshsite_client import client as client_module

from .fake_room import TRACEPARENT, FakeRoom, participant


@pytest.mark.asyncio
async def test_it_connects_with_a_bearer_token_and_loads_the_room_state() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "tok-1") as room:
        assert server.authorizations == ["Bearer tok-1"]
        assert room.participant.id == "p_1"
        assert set(room.participants) == {"p_1", "p_bob"}
        assert room.room is not None and room.room.name == "lobby" and room.room.project == "demo"
        assert room.limits["default_timeout"] == 60
        assert [t.name for t in room.toolkits] == ["messaging"]
        assert room.toolkits[0].builtin
        assert room.participant["identity"] == "alice"


@pytest.mark.asyncio
async def test_it_raises_auth_error_with_the_reason_from_connection_closing() -> None:
    async with FakeRoom() as server:
        server.close_on_connect = (4401, "invalid token")
        with pytest.raises(AuthError, match="invalid token") as caught:
            async with RoomClient(server.url, "bad"):
                pass
        assert caught.value.code == 4401


@pytest.mark.asyncio
async def test_it_raises_a_clear_error_when_nothing_listens() -> None:
    with pytest.raises(ConnectionLost, match="cannot connect"):
        async with RoomClient("ws://127.0.0.1:9/rooms/lobby/ws", "t", open_timeout=2):
            pass


@pytest.mark.asyncio
async def test_it_maps_a_refused_handshake_to_auth_error() -> None:
    async with FakeRoom() as server:
        server.refuse_status = 403
        with pytest.raises(AuthError, match="HTTP 403"):
            async with RoomClient(server.url, "t"):
                pass


@pytest.mark.asyncio
async def test_invoke_sends_the_protocol_params_and_returns_the_output() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        task = asyncio.create_task(
            room.invoke(
                "weather", "forecast", {"city": "Lisbon"}, participant_id="p_bob", timeout=30, traceparent=TRACEPARENT
            )
        )
        conn, frame = await server.next_frame("tools.invoke")
        params = frame["params"]
        assert params["toolkit"] == "weather" and params["tool"] == "forecast"
        assert params["arguments"] == {"city": "Lisbon"}
        assert params["participant_id"] == "p_bob"
        assert params["timeout"] == 30
        assert re.fullmatch(r"[0-9a-f]{32}", params["call_id"])
        assert params["_meta"] == {"traceparent": TRACEPARENT}
        await conn.answer(frame, {"call_id": params["call_id"], "output": {"celsius": 21}})
        assert await task == {"celsius": 21}


@pytest.mark.asyncio
async def test_a_failed_invoke_raises_the_mapped_error() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        task = asyncio.create_task(room.invoke("weather", "forecast", {}))
        conn, frame = await server.next_frame("tools.invoke")
        await conn.fail(frame, -32009, "tool failed", {"type": "tool_failed", "message": "no such city"})
        with pytest.raises(ToolFailed, match="no such city"):
            await task


@pytest.mark.asyncio
async def test_progress_reaches_the_calls_on_progress_and_cancel_sends_tools_cancel() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        seen: list[Any] = []
        call = await room.start_invoke("calc", "slow", {}, on_progress=seen.append, call_id="c-42")
        assert call.call_id == "c-42"
        conn, invoke = await server.next_frame("tools.invoke")
        await conn.notify("tools.progress", {"call_id": "c-42", "progress": {"percent": 40}})
        await conn.notify("tools.progress", {"call_id": "other", "progress": {"percent": 99}})
        cancel_task = asyncio.create_task(call.cancel())
        _, cancel = await server.next_frame("tools.cancel")
        assert cancel["params"] == {"call_id": "c-42"}
        await conn.answer(cancel, {"cancelled": True})
        await conn.fail(invoke, -32011, "cancelled", {"type": "cancelled"})
        assert await cancel_task is True
        with pytest.raises(Cancelled):
            await call.result()
        assert seen == [{"percent": 40}]


@pytest.mark.asyncio
async def test_an_invoke_never_waits_past_its_deadline_plus_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "INVOKE_GRACE", 0.1)
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        with pytest.raises(Timeout, match="no answer"):
            await room.invoke("calc", "slow", {}, timeout=0.1, call_id="c-1")
        _, cancel = await server.next_frame("tools.cancel")
        assert cancel["params"] == {"call_id": "c-1"}


@pytest.mark.asyncio
async def test_an_invoke_outside_a_handler_carries_no_traceparent_unless_given() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        task = asyncio.create_task(room.invoke("a", "b"))
        conn, frame = await server.next_frame("tools.invoke")
        assert "_meta" not in frame["params"]
        await conn.answer(frame, {"call_id": frame["params"]["call_id"], "output": None})
        assert await task is None
        assert new_traceparent() != new_traceparent()


@pytest.mark.asyncio
async def test_state_follows_participant_and_toolkit_notifications() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        conn = server.connections[0]
        joined = asyncio.create_task(room.wait_for("participant.joined", lambda p: p["participant"]["id"] == "p_carol"))
        await conn.notify("participant.joined", {"participant": participant("p_dave", "dave")})
        await conn.notify("participant.joined", {"participant": participant("p_carol", "carol")})
        event = await joined
        assert event.method == "participant.joined" and event["participant"]["identity"] == "carol"
        assert {"p_carol", "p_dave"} <= set(room.participants)
        kit = {"name": "ui", "public": False, "participant_id": "p_carol", "tools": []}
        await conn.notify("toolkits.changed", {"action": "registered", "toolkit": kit})
        await room.wait_for("toolkits.changed")
        assert any(t.name == "ui" for t in room.toolkits)
        await conn.notify(
            "participant.left", {"participant_id": "p_carol", "identity": "carol", "reason": "disconnected"}
        )
        await room.wait_for("participant.left")
        assert "p_carol" not in room.participants
        assert not any(t.name == "ui" for t in room.toolkits)


@pytest.mark.asyncio
async def test_callbacks_and_event_streams_receive_notifications() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        sync_seen: list[dict[str, Any]] = []
        async_seen: list[dict[str, Any]] = []

        async def record(params: dict[str, Any]) -> None:
            async_seen.append(params)

        room.on("messaging.message", sync_seen.append)
        room.on("*", record)
        stream = room.events("messaging.message")
        message = {"from": {"id": "p_bob"}, "to": None, "type": "chat", "message": {"text": "hi"}}
        await server.connections[0].notify("messaging.message", message)
        event = await asyncio.wait_for(stream.__anext__(), 2)
        await asyncio.sleep(0.01)
        assert event.params == message
        assert sync_seen == [message]
        assert message in async_seen
        await stream.aclose()


@pytest.mark.asyncio
async def test_messaging_helpers_invoke_the_builtin_toolkits() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        sent = asyncio.create_task(room.send_message("p_bob", "chat", {"text": "hi"}))
        conn, frame = await server.next_frame("tools.invoke")
        assert (frame["params"]["toolkit"], frame["params"]["tool"]) == ("messaging", "send")
        assert frame["params"]["arguments"] == {"to": "p_bob", "type": "chat", "message": {"text": "hi"}}
        await conn.answer(frame, {"call_id": frame["params"]["call_id"], "output": {"delivered": True}})
        assert await sent == {"delivered": True}
        listed = asyncio.create_task(room.list_participants())
        conn, frame = await server.next_frame("tools.invoke")
        assert (frame["params"]["toolkit"], frame["params"]["tool"]) == ("participants", "list")
        output = {"participants": [participant("p_1"), participant("p_bob", "bob")]}
        await conn.answer(frame, {"call_id": frame["params"]["call_id"], "output": output})
        assert [p.identity for p in await listed] == ["alice", "bob"]
        missing = asyncio.create_task(room.list_toolkits("p_nobody"))
        conn, frame = await server.next_frame("toolkits.list")
        assert frame["params"] == {"participant_id": "p_nobody"}
        await conn.fail(frame, -32002, "no such participant", {"type": "not_found"})
        with pytest.raises(NotFound):
            await missing


@pytest.mark.asyncio
async def test_cancelling_an_awaited_invoke_cancels_the_call_on_the_server() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        task = asyncio.create_task(room.invoke("calc", "slow", {}, call_id="c-9"))
        await server.next_frame("tools.invoke")
        task.cancel()
        _, cancel = await server.next_frame("tools.cancel")
        assert cancel["params"] == {"call_id": "c-9"}
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.asyncio
async def test_set_attributes_updates_the_own_participant() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t") as room:
        task = asyncio.create_task(room.set_attributes({"status": "busy"}))
        conn, frame = await server.next_frame("participant.set_attributes")
        assert frame["params"] == {"attributes": {"status": "busy"}}
        await conn.answer(frame, {"participant": {**participant("p_1"), "attributes": {"status": "busy"}}})
        me = await task
        assert me.attributes == {"status": "busy"}
        assert room.participant.attributes == {"status": "busy"}
        assert room.participants["p_1"].attributes == {"status": "busy"}
