"""RoomClient against a real server: room state, presence, messaging, refusals and REST tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from meshsite_client import (
    AuthError,
    ConnectionLost,
    NotFound,
    RoomClient,
    TokenError,
    mint_token,
)

from .live import until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_a_client_starts_with_its_participant_the_people_present_and_the_toolkits_it_may_invoke(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("alice", attributes={"lang": "en"})) as alice,
        RoomClient(ws_url("lobby"), mint("bob", role="agent", name="Bob the agent")) as bob,
    ):
        me = bob.participant
        assert (me.identity, me.role, me.name) == ("bob", "agent", "Bob the agent")
        assert me.id.startswith("p_") and me.id != alice.participant.id
        assert me["identity"] == "bob"  # records also read like the wire JSON
        assert set(bob.participants) == {alice.participant.id, me.id}
        assert bob.participants[alice.participant.id].attributes == {"lang": "en"}
        assert bob.room is not None and (bob.room.name, bob.room.project) == ("lobby", "acme")
        assert bob.ready["protocol"] == 1
        assert bob.limits["default_timeout"] == 60
        builtins = {t.name: t for t in bob.toolkits if t.builtin}
        assert {"messaging", "participants"} <= set(builtins)
        assert builtins["messaging"].tool("send") is not None
        pong = await bob.ping()
        assert pong["pong"] is True and pong["time"].endswith("Z")


async def test_an_invalid_token_is_refused_with_auth_error_and_the_servers_reason(ws_url):
    with pytest.raises(AuthError, match="invalid token") as caught:
        async with RoomClient(ws_url("lobby"), "not-a-token"):
            pass
    assert caught.value.code == 4401


async def test_a_token_for_another_room_is_refused_as_forbidden(ws_url, mint):
    with pytest.raises(AuthError) as caught:
        async with RoomClient(ws_url("lobby"), mint("alice", room="kitchen")):
            pass
    assert caught.value.code == 4403


async def test_nothing_listening_is_a_clear_connection_error():
    with pytest.raises(ConnectionLost, match="cannot connect"):
        async with RoomClient("ws://127.0.0.1:9/rooms/lobby/ws", "t", open_timeout=2):
            pass


async def test_participants_follow_joins_attribute_changes_and_departures(ws_url, mint):
    async with RoomClient(ws_url("lobby"), mint("alice")) as alice:
        joined = asyncio.create_task(
            alice.wait_for("participant.joined", lambda p: p["participant"]["identity"] == "bob")
        )
        bob = await RoomClient(ws_url("lobby"), mint("bob")).connect()
        try:
            event = await joined
            bob_id = bob.participant.id
            assert event["participant"]["id"] == bob_id
            assert alice.participants[bob_id].identity == "bob"

            updated = asyncio.create_task(alice.wait_for("participant.updated"))
            me = await bob.set_attributes({"status": "busy", "typing": True})
            assert me.attributes == {"status": "busy", "typing": True}
            assert bob.participant.attributes == me.attributes
            assert (await updated)["participant"]["id"] == bob_id
            assert alice.participants[bob_id].attributes == {"status": "busy", "typing": True}

            await bob.set_attributes({"typing": None})
            await until(alice, lambda: alice.participants[bob_id].attributes == {"status": "busy"})

            left = asyncio.create_task(alice.wait_for("participant.left"))
        finally:
            await bob.close()
        event = await left
        assert (event["participant_id"], event["identity"], event["reason"]) == (bob_id, "bob", "disconnected")
        assert bob_id not in alice.participants
        assert set(alice.participants) == {alice.participant.id}


async def test_a_direct_message_reaches_only_its_target_through_callbacks_and_streams(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("carol")) as carol,
    ):
        sync_seen: list[dict[str, Any]] = []
        async_seen: list[dict[str, Any]] = []
        arrived = asyncio.Event()

        async def record(params: dict[str, Any]) -> None:
            async_seen.append(params)
            arrived.set()

        bob.on("messaging.message", sync_seen.append)
        bob.on("messaging.message", record)
        carol_stream = carol.events("messaging.message")
        async with bob.events("messaging.message") as stream:
            assert await alice.send_message(bob.participant.id, "chat", {"text": "hi"}) == {"delivered": True}
            event = await asyncio.wait_for(anext(stream), 5)
        await asyncio.wait_for(arrived.wait(), 5)
        assert event.method == "messaging.message"
        assert event["from"]["identity"] == "alice" and event["from"]["id"] == alice.participant.id
        assert (event["to"], event["type"], event["message"]) == (bob.participant.id, "chat", {"text": "hi"})
        assert sync_seen == async_seen == [event.params]
        # carol got nothing: a broadcast from bob is the first message her stream sees.
        await bob.broadcast("chat", "after")
        first = await asyncio.wait_for(anext(carol_stream), 5)
        assert (first["from"]["identity"], first["message"]) == ("bob", "after")
        await carol_stream.aclose()


async def test_a_broadcast_reaches_everyone_but_the_sender(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("carol")) as carol,
    ):
        waiting = [asyncio.create_task(peer.wait_for("messaging.message")) for peer in (bob, carol)]
        alice_stream = alice.events("messaging.message")
        assert await alice.broadcast("chat", {"text": "hello all"}) == {"delivered": 2}
        for event in await asyncio.gather(*waiting):
            assert (event["to"], event["type"], event["message"]) == (None, "chat", {"text": "hello all"})
            assert event["from"]["identity"] == "alice"
        # The sender's own stream stays empty: bob's reply is the first thing it sees.
        await bob.send_message(alice.participant.id, "chat", "back")
        reply = await asyncio.wait_for(anext(alice_stream), 5)
        assert reply["message"] == "back"
        await alice_stream.aclose()


async def test_it_lists_participants_and_toolkits_and_an_absent_participant_is_not_found(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
    ):
        listed = await alice.list_participants()
        assert sorted(p.identity for p in listed) == ["alice", "bob"]
        assert {p.id for p in listed} == set(alice.participants)
        toolkits = await alice.list_toolkits()
        assert {"messaging", "participants"} <= {t.name for t in toolkits}
        assert await alice.list_toolkits(bob.participant.id) == []
        with pytest.raises(NotFound, match="p_nobody"):
            await alice.list_toolkits("p_nobody")
        with pytest.raises(NotFound):
            await alice.send_message("p_nobody", "chat", "hello?")


async def test_a_token_minted_over_rest_with_an_api_key_joins_the_room(server, api_key):
    data = await asyncio.to_thread(
        mint_token, server.http_url, api_key, room="lobby", identity="dave", name="Dave", ttl=120
    )
    assert data["project"] == "acme" and data["room"] == "lobby"
    assert data["ws_url"] == server.ws_url("lobby")
    async with RoomClient(data["ws_url"], data["token"]) as dave:
        assert (dave.participant.identity, dave.participant.name) == ("dave", "Dave")
    with pytest.raises(TokenError) as caught:
        await asyncio.to_thread(mint_token, server.http_url, "msk_wrong", room="lobby", identity="dave")
    assert caught.value.status == 401
    with pytest.raises(TokenError) as caught:
        await asyncio.to_thread(mint_token, server.http_url, api_key, room="Not A Room", identity="dave")
    assert caught.value.status == 400 and caught.value.type == "invalid_request"


async def test_after_close_every_request_fails_at_once_with_connection_lost(ws_url, mint):
    room = await RoomClient(ws_url("lobby"), mint("alice")).connect()
    await room.close()
    assert room.closed and not room.connected
    with pytest.raises(ConnectionLost, match="closed"):
        await room.ping()
    with pytest.raises(ConnectionLost, match="closed"):
        room.start_invoke("participants", "list")
