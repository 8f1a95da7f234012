"""Attributes, direct messages and broadcasts between participants."""

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_attributes_merge_and_reach_everyone_else(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice", attributes={"lang": "en"})) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
    ):
        assert alice.ready["participant"]["attributes"] == {"lang": "en"}
        result = await alice.result("participant.set_attributes", {"attributes": {"status": "busy", "lang": None}})
        assert result["participant"]["attributes"] == {"status": "busy"}
        updated = await bob.notification("participant.updated")
        assert updated["participant"]["id"] == alice.id
        assert updated["participant"]["attributes"] == {"status": "busy"}
        listed = await bob.invoke("participants", "get", {"participant_id": alice.id})
        assert listed["result"]["output"]["participant"]["attributes"] == {"status": "busy"}


async def test_attributes_over_the_size_limit_are_refused(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        response = await alice.request("participant.set_attributes", {"attributes": {"blob": "x" * 20000}})
        assert response["error"]["code"] == ErrorCode.PAYLOAD_TOO_LARGE
        assert response["error"]["data"]["limit"] == 16 * 1024


async def test_a_direct_message_reaches_only_its_target(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("carol")) as carol,
    ):
        sent = await alice.invoke("messaging", "send", {"to": bob.id, "type": "chat", "message": {"text": "hi"}})
        assert sent["result"]["output"] == {"delivered": True}
        message = await bob.notification("messaging.message")
        assert message["from"]["identity"] == "alice"
        assert (message["to"], message["type"], message["message"]) == (bob.id, "chat", {"text": "hi"})
        with pytest.raises(TimeoutError):
            await carol.notification("messaging.message", timeout=0.3)


async def test_a_message_to_someone_absent_is_not_found(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        response = await alice.invoke("messaging", "send", {"to": "p_nobody", "type": "chat", "message": 1})
        assert response["error"]["code"] == ErrorCode.NOT_FOUND


async def test_a_broadcast_reaches_everyone_but_the_sender(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("carol")) as carol,
    ):
        sent = await alice.invoke("messaging", "broadcast", {"type": "chat", "message": "hello all"})
        assert sent["result"]["output"] == {"delivered": 2}
        for peer in (bob, carol):
            message = await peer.notification("messaging.message")
            assert (message["to"], message["message"]) == (None, "hello all")
        with pytest.raises(TimeoutError):
            await alice.notification("messaging.message", timeout=0.3)


async def test_rooms_are_isolated(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("kitchen"), mint("bob", room="kitchen")) as bob,
    ):
        assert [p["identity"] for p in bob.ready["participants"]] == ["bob"]
        await alice.invoke("messaging", "broadcast", {"type": "chat", "message": "lobby only"})
        with pytest.raises(TimeoutError):
            await bob.notification("messaging.message", timeout=0.3)
        assert (await alice.invoke("messaging", "send", {"to": bob.id, "type": "x", "message": 1}))["error"][
            "code"
        ] == ErrorCode.NOT_FOUND


@pytest.mark.parametrize("size", [10, 200, 70_000, 300_000])
async def test_messages_of_every_frame_length_form_arrive_intact(ws_url, mint, size):
    """The server writes its frames itself (meshsite.sockets.write_now): a payload
    length under 126, a 16-bit and a 64-bit extended length, each read back by a real client."""
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
    ):
        text = "é" * (size // 2)  # two bytes each in UTF-8: lengths are counted in bytes
        sent = await alice.invoke("messaging", "send", {"to": bob.id, "type": "chat", "message": {"text": text}})
        assert sent["result"]["output"] == {"delivered": True}
        message = await bob.notification("messaging.message")
        assert message["message"] == {"text": text}
