"""Who may connect, what they see first, and how refusals are explained."""

import json
import time
from datetime import datetime

import jwt
import pytest
import websockets
from meshsite_client.protocol import ErrorCode

from rooms.tokens import signing_key
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def closing(url: str, **kwargs) -> tuple[dict, int | None]:
    """Connects and returns the server's connection.closing notice and the close code."""
    async with websockets.connect(url, **kwargs) as ws:
        notice = json.loads(await ws.recv())
        await ws.wait_closed()
        return notice, ws.close_code


async def test_room_ready_describes_the_room_the_participant_and_the_limits(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice", name="Alice")) as alice:
        ready = alice.ready
        assert ready["protocol"] == 1
        assert ready["room"] == {"name": "lobby", "project": "acme"}
        assert ready["participant"]["identity"] == "alice"
        assert ready["participant"]["name"] == "Alice"
        assert ready["participant"]["role"] == "user"
        assert [p["identity"] for p in ready["participants"]] == ["alice"]
        assert {"messaging", "participants"} <= {t["name"] for t in ready["toolkits"]}
        assert ready["limits"]["max_frame_bytes"] == 1024 * 1024


async def test_others_see_a_participant_join_and_leave(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        async with await RawPeer.connect(ws_url("lobby"), mint("bob", role="agent")) as bob:
            joined = await alice.notification("participant.joined")
            assert joined["participant"]["id"] == bob.id
            assert joined["participant"]["role"] == "agent"
            assert {p["identity"] for p in bob.ready["participants"]} == {"alice", "bob"}
        left = await alice.notification("participant.left")
        assert left == {"participant_id": bob.id, "identity": "bob", "reason": "disconnected"}


async def test_a_missing_token_is_refused_with_4401(ws_url, project):
    notice, code = await closing(ws_url("lobby"))
    assert code == 4401
    assert notice["method"] == "connection.closing"
    assert notice["params"]["code"] == 4401


async def test_a_forged_token_is_refused_with_4401(ws_url, project):
    forged = jwt.encode(
        {
            "iss": "meshsite",
            "sub": "mallory",
            "project": "acme",
            "room": "lobby",
            "role": "service",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "guessed-secret-guessed-secret-guessed",
        algorithm="HS256",
    )
    notice, code = await closing(ws_url("lobby") + f"?token={forged}")
    assert code == 4401
    assert "invalid token" in notice["params"]["reason"]


async def test_an_expired_token_is_refused_with_4401(ws_url, project):
    expired = jwt.encode(
        {
            "iss": "meshsite",
            "sub": "alice",
            "project": "acme",
            "room": "lobby",
            "role": "user",
            "iat": int(time.time()) - 60,
            "exp": int(time.time()) - 1,
        },
        signing_key(),
        algorithm="HS256",
    )
    notice, code = await closing(ws_url("lobby") + f"?token={expired}")
    assert (code, notice["params"]["reason"]) == (4401, "token expired")


async def test_a_token_for_another_room_is_refused_with_4403(ws_url, mint):
    notice, code = await closing(ws_url("kitchen"), additional_headers={"Authorization": f"Bearer {mint('alice')}"})
    assert code == 4403
    assert "for room 'lobby'" in notice["params"]["reason"]


async def test_a_token_without_room_create_cannot_create_a_room(ws_url, mint):
    token = mint("alice", room="brand-new", grants={"room_create": False})
    notice, code = await closing(ws_url("brand-new"), additional_headers={"Authorization": f"Bearer {token}"})
    assert code == 4403
    assert "may not create it" in notice["params"]["reason"]


async def test_a_browser_socket_from_a_foreign_origin_is_refused(ws_url, mint):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url("lobby") + f"?token={mint('alice')}", origin="https://evil.example")
    assert refused.value.response.status_code == 403


async def test_a_browser_socket_from_the_sites_own_origin_is_accepted(ws_url, mint, server):
    url = ws_url("lobby") + f"?token={mint('alice')}"
    async with websockets.connect(url, origin=server.http_url) as ws:
        assert json.loads(await ws.recv())["method"] == "room.ready"


@pytest.mark.parametrize("origin", ["http://127.0.0.1", "http://127.0.0.1:6666", "https://127.0.0.1:{port}"])
async def test_the_same_host_on_another_port_or_scheme_is_another_origin(ws_url, mint, server, origin):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url("lobby") + f"?token={mint('alice')}", origin=origin.format(port=server.port))
    assert refused.value.response.status_code == 403


async def test_a_singleton_tokens_second_connection_replaces_the_first(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        first = await RawPeer.connect(ws_url("lobby"), mint("alice", singleton=True))
        second = await RawPeer.connect(ws_url("lobby"), mint("alice", singleton=True))
        notice = await first.notification("connection.closing")
        assert notice == {"code": 4409, "reason": "replaced"}
        await first.ws.wait_closed()
        assert first.ws.close_code == 4409
        left = await bob.notification("participant.left")
        assert (left["participant_id"], left["reason"]) == (first.id, "replaced")
        assert (await second.result("ping"))["pong"] is True
        await second.ws.close()


async def test_one_person_may_hold_several_connections(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as first_tab,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as second_tab,
    ):
        assert first_tab.id != second_tab.id
        assert (await first_tab.result("ping"))["pong"] is True
        listed = await second_tab.result("tools.invoke", {"toolkit": "participants", "tool": "list"})
        ids = {p["id"] for p in listed["output"]["participants"] if p["identity"] == "alice"}
        assert ids == {first_tab.id, second_tab.id}


async def test_a_connection_is_closed_when_its_token_expires(ws_url, mint):
    alice = await RawPeer.connect(ws_url("lobby"), mint("alice", ttl=1))
    notice = await alice.notification("connection.closing", timeout=5)
    assert notice == {"code": 4408, "reason": "token expired"}
    await alice.ws.wait_closed()
    assert alice.ws.close_code == 4408


async def test_a_refreshed_token_keeps_the_connection_open(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice", ttl=2)) as alice:
        refreshed = await alice.result("connection.refresh_token", {"token": mint("alice", ttl=60)})
        expires = datetime.fromisoformat(refreshed["token_expires_at"].replace("Z", "+00:00"))
        assert expires.timestamp() > time.time() + 30
        with pytest.raises(TimeoutError):
            await alice.notification("connection.closing", timeout=3)


async def test_a_refresh_token_for_another_identity_is_refused(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        response = await alice.request("connection.refresh_token", {"token": mint("mallory", role="service")})
        assert response["error"]["code"] == ErrorCode.PERMISSION_DENIED
