"""Dropped connections: reconnecting, restoring state, and fatal close codes (fake server)."""

from __future__ import annotations

import asyncio

import pytest
from meshsite_client import AuthError, ConnectionLost, Replaced, RoomClient

from .fake_room import CALC, FakeRoom


@pytest.mark.asyncio
async def test_it_reconnects_after_a_drop_and_restores_its_toolkits() -> None:
    tokens = iter(["first", "second", "third"])
    async with FakeRoom() as server, RoomClient(server.url, lambda: next(tokens), max_backoff=0.2) as room:
        await room.register_toolkit(CALC)
        events = room.events("connection.lost", "connection.restored")
        pending = asyncio.create_task(room.invoke("weather", "forecast", {}))
        await server.next_frame("tools.invoke")
        await server.connections[0].close(1011, "boom", notice=False)
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(pending, 2)
        lost = await asyncio.wait_for(events.__anext__(), 2)
        assert lost.method == "connection.lost" and lost["code"] == 1011
        restored = await asyncio.wait_for(events.__anext__(), 5)
        assert restored.method == "connection.restored"
        assert restored["previous_participant_id"] == "p_1"
        assert restored["participant"]["id"] == "p_2"
        assert restored["failed_toolkits"] == {}
        assert room.participant.id == "p_2"
        assert server.authorizations == ["Bearer first", "Bearer second"]
        assert [pid for pid, params in server.registered] == ["p_1", "p_2"]
        assert await room.ping() == {"pong": True, "time": "2026-11-24T10:00:00.000000Z"}


@pytest.mark.asyncio
async def test_requests_fail_at_once_while_reconnecting() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t", max_backoff=0.1) as room:
        events = room.events("connection.lost", "connection.restored")
        server.refuse_status = 503
        await server.connections[0].close(1001, "server shutting down")
        lost = await asyncio.wait_for(events.__anext__(), 2)
        assert lost.method == "connection.lost" and lost["reason"] == "server shutting down"
        with pytest.raises(ConnectionLost, match="reconnecting"):
            await room.ping()
        with pytest.raises(ConnectionLost):
            room.start_invoke("a", "b")
        await asyncio.sleep(0.3)  # a few refused attempts
        assert len(server.authorizations) > 2
        server.refuse_status = None
        restored = await asyncio.wait_for(events.__anext__(), 5)
        assert restored.method == "connection.restored"
        assert room.connected


@pytest.mark.asyncio
async def test_being_replaced_is_fatal_and_surfaces_as_replaced() -> None:
    async with FakeRoom() as server, RoomClient(server.url, "t", max_backoff=0.1) as room:
        events = room.events()
        await server.connections[0].close(4409, "replaced")
        with pytest.raises(Replaced, match="replaced"):
            await asyncio.wait_for(room.wait_closed(), 2)
        assert len(server.connections) == 1
        methods = [event.method async for event in events]
        assert methods[-2:] == ["connection.closing", "connection.closed"]
        with pytest.raises(Replaced):
            await room.ping()


@pytest.mark.asyncio
async def test_an_expired_static_token_is_fatal_but_a_token_callable_reconnects() -> None:
    async with FakeRoom() as server:
        async with RoomClient(server.url, "static", max_backoff=0.1) as room:
            await server.connections[0].close(4408, "token expired")
            with pytest.raises(AuthError, match="token expired"):
                await asyncio.wait_for(room.wait_closed(), 2)

        async def fresh() -> str:
            return "fresh"

        async with RoomClient(server.url, fresh, max_backoff=0.1) as room:
            events = room.events("connection.restored")
            await server.connections[1].close(4408, "token expired")
            await asyncio.wait_for(events.__anext__(), 5)
            assert server.authorizations[-1] == "Bearer fresh"
