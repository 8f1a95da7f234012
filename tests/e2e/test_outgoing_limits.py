"""What the server sends is bounded by the same frame limit as what it receives: a frame that
would be too large becomes an error to whoever caused it (never a hang, never a false
`delivered`), text is not escaped into something larger, and a room too large for one frame
still reaches a newcomer, in several (project issue 15)."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from meshsite_client import RoomClient
from meshsite_client.protocol import ErrorCode, encode_frame

from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

LIMIT = 65536
QUIET = 0.5
ECHO_TOOL = {"name": "echo", "description": "returns whatever its host decides", "input_schema": {"type": "object"}}


@pytest.fixture(scope="module")
def small_frames(django_db_setup, django_db_blocker) -> Iterator[ServerProcess]:
    """A node whose frames (both ways) are at most 64 KiB."""
    with django_db_blocker.unblock():
        process = ServerProcess(
            redis_url=settings.REDIS_URL or None, env={"MESHSITE_MAX_FRAME_BYTES": str(LIMIT)}
        ).start()
    yield process
    process.stop()


def compact(message: dict[str, Any]) -> str:
    """As a frugal client writes it: no spaces, UTF-8 as is."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def invoke_frame(request_id: str, toolkit: str, tool: str, arguments: dict[str, Any]) -> str:
    params = {"toolkit": toolkit, "tool": tool, "arguments": arguments}
    return compact({"jsonrpc": "2.0", "id": request_id, "method": "tools.invoke", "params": params})


async def answer_to(peer: RawPeer, request_id: Any, timeout: float = 5) -> dict[str, Any]:
    return await peer.expect(lambda m: "method" not in m and m.get("id") == request_id, timeout)


async def receives_nothing(peer: RawPeer, method: str = "messaging.message") -> bool:
    try:
        await peer.notification(method, timeout=QUIET)
    except TimeoutError:
        return True
    return False


def padded_to(size: int, build: Any) -> str:
    """build(padding) with padding of 'x' chosen so the encoded text is `size` bytes."""
    empty = build("")
    text = build("x" * (size - len(empty.encode())))
    assert len(text.encode()) == size
    return text


async def test_a_host_answer_that_fits_in_but_not_out_is_payload_too_large_for_the_caller(small_frames, mint):
    room = "out-host"
    url = small_frames.ws_url(room)
    async with (
        await RawPeer.connect(url, mint("host", room=room)) as host,
        await RawPeer.connect(url, mint("caller", room=room)) as caller,
    ):
        await host.register("big", [ECHO_TOOL])
        invoke = asyncio.create_task(caller.invoke("big", "echo", {}, timeout=10))
        call = await host.next_call()
        # Just under the limit coming in; the caller's response adds its id and call_id around it.
        answer = padded_to(LIMIT - 8, lambda pad: compact({"jsonrpc": "2.0", "id": call["id"], "result": pad}))
        output = json.loads(answer)["result"]
        wrapped = compact(
            {"jsonrpc": "2.0", "id": "peer-1-0123abcd", "result": {"call_id": call["id"], "output": output}}
        )
        assert len(wrapped.encode()) > LIMIT
        await host.send(answer)
        response = await asyncio.wait_for(invoke, 5)
        assert response["error"]["code"] == ErrorCode.PAYLOAD_TOO_LARGE, str(response)[:300]
        assert response["error"]["data"]["limit"] == LIMIT
        # Both stay connected and usable.
        assert (await host.result("ping"))["pong"] is True
        assert (await caller.result("ping"))["pong"] is True


async def test_non_ascii_text_is_not_escaped_so_a_60_kb_message_fits_in_a_64_kb_frame(small_frames, mint):
    room = "out-utf8"
    url = small_frames.ws_url(room)
    text = "é" * 30_000
    assert len(text.encode()) == 60_000 and len(json.dumps(text)) > 180_000
    async with (
        await RawPeer.connect(url, mint("alice", room=room)) as alice,
        await RawPeer.connect(url, mint("bob", room=room)) as bob,
    ):
        sent = invoke_frame("utf8-1", "messaging", "send", {"to": bob.id, "type": "chat", "message": text})
        assert len(sent.encode()) < LIMIT
        await alice.send(sent)
        assert (await answer_to(alice, "utf8-1"))["result"]["output"] == {"delivered": True}
        assert (await bob.notification("messaging.message"))["message"] == text
        # A host's output is not escaped either.
        await bob.register("words", [ECHO_TOOL])
        invoke = asyncio.create_task(alice.invoke("words", "echo", {}))
        call = await bob.next_call()
        await bob.send(compact({"jsonrpc": "2.0", "id": call["id"], "result": text}))
        assert (await invoke)["result"]["output"] == text


async def test_a_direct_message_too_large_to_deliver_is_payload_too_large_and_never_delivered(small_frames, mint):
    room = "out-send"
    url = small_frames.ws_url(room)
    # The relayed frame names the sender twice (identity and name), so it outgrows the request.
    identity = "mallory-" + "m" * 60
    async with (
        await RawPeer.connect(url, mint("bob", room=room)) as bob,
        await RawPeer.connect(url, mint(identity, room=room)) as mallory,
    ):
        arguments = {"to": bob.id, "type": "chat"}
        text = padded_to(
            LIMIT - 16, lambda pad: invoke_frame("send-1", "messaging", "send", {**arguments, "message": pad})
        )
        pad = json.loads(text)["params"]["arguments"]["message"]
        relayed = encode_frame(
            {
                "jsonrpc": "2.0",
                "method": "messaging.message",
                "params": {
                    "from": {"id": mallory.id, "identity": identity, "role": "user", "name": identity},
                    "to": bob.id,
                    "type": "chat",
                    "message": pad,
                },
            }
        )
        assert len(relayed.encode()) > LIMIT
        await mallory.send(text)
        refused = await answer_to(mallory, "send-1")
        assert refused["error"]["code"] == ErrorCode.PAYLOAD_TOO_LARGE, str(refused)[:300]
        assert "result" not in refused
        assert await receives_nothing(bob)
        assert bob.id in {
            p["id"] for p in (await mallory.invoke("participants", "list"))["result"]["output"]["participants"]
        }
        assert not bob.closed


@pytest.mark.parametrize("shape", ["near-the-limit", "numbers-that-grow"])
async def test_a_broadcast_too_large_to_deliver_is_payload_too_large_and_nobody_receives_it(small_frames, mint, shape):
    room = "out-broadcast"
    url = small_frames.ws_url(room)
    identity = "mallory-" + "m" * 60
    async with (
        await RawPeer.connect(url, mint("bob", room=room)) as bob,
        await RawPeer.connect(url, mint("carol", room=room)) as carol,
        await RawPeer.connect(url, mint(identity, room=room)) as mallory,
    ):
        if shape == "near-the-limit":
            text = padded_to(
                LIMIT - 16, lambda pad: invoke_frame("b-1", "messaging", "broadcast", {"type": "chat", "message": pad})
            )
        else:
            # 1e15 is 4 bytes in the request and 18 ("1000000000000000.0") once re-encoded.
            message = "[" + ",".join(["1e15"] * 12_000) + "]"
            text = invoke_frame("b-1", "messaging", "broadcast", {"type": "chat", "message": None}).replace(
                '"message":null', f'"message":{message}'
            )
        assert len(text.encode()) < LIMIT
        await mallory.send(text)
        refused = await answer_to(mallory, "b-1")
        assert refused["error"]["code"] == ErrorCode.PAYLOAD_TOO_LARGE, str(refused)[:300]
        for peer in (bob, carol):
            assert await receives_nothing(peer)
            assert not peer.closed
        assert (await mallory.invoke("messaging", "broadcast", {"type": "chat", "message": "small"}))["result"][
            "output"
        ] == {"delivered": 2}


async def test_a_room_too_large_for_one_frame_reaches_a_newcomer_in_snapshot_frames(small_frames, mint):
    room = "out-snapshot"
    url = small_frames.ws_url(room)
    description = "d" * 4000
    hosts = [await RawPeer.connect(url, mint(f"host-{i}", room=room)) for i in range(12)]
    try:
        for i, host in enumerate(hosts):
            tools = [
                {"name": f"tool{n}", "description": description, "input_schema": {"type": "object"}} for n in range(2)
            ]
            registered = await host.register(f"kit{i}", tools)
            assert "result" in registered, registered
        kits = {f"kit{i}" for i in range(12)}
        host_ids = {host.id for host in hosts}

        newcomer = await RawPeer.connect(url, mint("newcomer", room=room))
        async with newcomer:
            ready = newcomer.ready
            assert ready["complete"] is False
            assert ready["participant"]["id"] == newcomer.id
            assert ready["limits"]["max_frame_bytes"] == LIMIT
            toolkits, participants = list(ready["toolkits"]), list(ready["participants"])
            snapshots = 0
            complete = False
            while not complete:
                page = await newcomer.notification("room.snapshot")
                snapshots += 1
                toolkits += page.get("toolkits", [])
                participants += page.get("participants", [])
                complete = page["complete"]
                assert snapshots < 20
            assert snapshots >= 1
            assert not any(m.get("method") == "room.ready" for m in newcomer.inbox)
            hosted = [t["name"] for t in toolkits if t["participant_id"] is not None]
            assert sorted(hosted) == sorted(kits)
            assert {"messaging", "participants"} <= {t["name"] for t in toolkits}
            assert all(len(tool["description"]) == 4000 for t in toolkits if t["name"] in kits for tool in t["tools"])
            ids = [p["id"] for p in participants]
            assert sorted(ids) == sorted(host_ids | {newcomer.id})
            assert (await newcomer.result("ping"))["pong"] is True

        async with RoomClient(url, mint("pyclient", room=room), reconnect=False) as client:
            assert kits <= {t.name for t in client.toolkits}
            assert host_ids <= set(client.participants)
            assert client.participant.identity == "pyclient"
    finally:
        for host in hosts:
            await host.ws.close()
            host.reader.cancel()
