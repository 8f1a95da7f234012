"""A participant that stops reading is cut off (4413, "slow reader") before what waits for it can
grow the server's memory, and everyone else is served meanwhile (project issue 15)."""

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from django.conf import settings
from meshsite_client.protocol import ErrorCode

from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess
from tests.support.witness import ping_watch

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

BUFFER = 1024 * 1024


@pytest.fixture(scope="module")
def small_buffer(django_db_setup, django_db_blocker) -> Iterator[ServerProcess]:
    """A node that holds at most 1 MiB of unsent frames per connection."""
    with django_db_blocker.unblock():
        process = ServerProcess(
            redis_url=settings.REDIS_URL or None, env={"MESHSITE_MAX_OUTGOING_BUFFER_BYTES": str(BUFFER)}
        ).start()
    yield process
    process.stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def connect_sleeper(server: ServerProcess, room: str, token: str) -> tuple[websockets.ClientConnection, str]:
    """A participant that reads its room.ready and nothing after: a tiny receive buffer, and a
    client that stops taking frames off the socket after one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    ws = await websockets.connect(
        server.ws_url(room),
        sock=sock,
        additional_headers={"Authorization": f"Bearer {token}"},
        max_queue=1,
        max_size=None,
        ping_interval=None,
    )
    ready = json.loads(await ws.recv())
    assert ready["method"] == "room.ready"
    return ws, ready["params"]["participant"]["id"]


def left(peer: RawPeer, participant_id: str) -> dict | None:
    for message in peer.inbox:
        if message.get("method") == "participant.left" and message["params"]["participant_id"] == participant_id:
            return message["params"]
    return None


async def test_a_participant_that_never_reads_is_cut_off_without_growing_the_server_or_stalling_others(
    small_buffer, mint
):
    room = "slow-reader"
    url = small_buffer.ws_url(room)
    async with (
        await RawPeer.connect(url, mint("sender", room=room)) as sender,
        await RawPeer.connect(url, mint("witness", room=room)) as witness,
    ):
        sleeper, sleeper_id = await connect_sleeper(small_buffer, room, mint("sleeper", room=room))
        try:
            await sender.expect(
                lambda m: m.get("method") == "participant.joined" and m["params"]["participant"]["id"] == sleeper_id
            )
            # Warm up the server's allocator with a couple of delivered messages before measuring.
            assert (await sender.invoke("messaging", "send", {"to": sleeper_id, "type": "t", "message": "hi"}))[
                "result"
            ]
            rss_before = rss_bytes(small_buffer.process.pid)
            arguments = {"to": sleeper_id, "type": "bulk", "message": "x" * (64 * 1024 - 200)}
            frame = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "@ID@",
                    "method": "tools.invoke",
                    "params": {"toolkit": "messaging", "tool": "send", "arguments": arguments},
                },
                separators=(",", ":"),
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            sent = 0
            async with ping_watch(witness) as watch:
                while loop.time() < deadline and left(sender, sleeper_id) is None:
                    sent += 1
                    await sender.send(frame.replace("@ID@", f"bulk-{sent}"))
                    await asyncio.sleep(0.01)
                gone = await sender.expect(
                    lambda m: m.get("method") == "participant.left" and m["params"]["participant_id"] == sleeper_id,
                    timeout=3,
                )
            rss_after = rss_bytes(small_buffer.process.pid)
            assert gone["params"]["reason"] == "slow reader", gone
            growth = rss_after - rss_before
            assert growth < 40 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB after {sent} messages"
            assert watch.max_rtt < 0.1, watch
            # From now on the sender hears it is gone, instead of `delivered`.
            late = await sender.invoke("messaging", "send", {"to": sleeper_id, "type": "t", "message": "late?"})
            assert late["error"]["code"] in (ErrorCode.PARTICIPANT_GONE, ErrorCode.NOT_FOUND), late
            assert (await witness.notification("participant.left"))["participant_id"] == sleeper_id
            listed = await witness.invoke("participants", "list")
            assert sleeper_id not in {p["id"] for p in listed["result"]["output"]["participants"]}
            assert (await sender.result("ping"))["pong"] is True
        finally:
            sleeper.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sleeper.wait_closed(), 2)
