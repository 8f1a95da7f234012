"""Every call ends, whatever fails underneath: a node dies, Redis restarts, a message is lost,
a connection goes silent."""

import asyncio
import base64
import os
import socket
import time
from collections.abc import Iterator

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import ADD_TOOL, RawPeer
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
FAST_HEARTBEAT = {"MESHSITE_NODE_HEARTBEAT_SECONDS": "0.3"}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def two_nodes(own_redis, transactional_db) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    nodes = [ServerProcess(redis_url=own_redis.url, env=FAST_HEARTBEAT).start() for _ in range(2)]
    yield nodes[0], nodes[1]
    for node in nodes:
        node.kill()


@pytest.mark.redis
async def test_a_node_that_dies_fails_calls_to_its_hosts_and_they_rejoin_elsewhere(two_nodes, mint):
    node_a, node_b = two_nodes
    async with await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice:
        bob = await RawPeer.connect(node_b.ws_url("lobby"), mint("bob"))
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, timeout=60))
        await bob.next_call()
        started = time.monotonic()
        node_b.kill()
        response = await asyncio.wait_for(invoke, 10)
        assert response["error"]["code"] == ErrorCode.PARTICIPANT_GONE
        assert "node was lost" in response["error"]["message"]
        assert time.monotonic() - started < 5
        left = await alice.notification("participant.left", timeout=10)
        assert (left["identity"], left["reason"]) == ("bob", "node lost")
        # bob reconnects to the surviving node, registers again and is callable.
        async with await RawPeer.connect(node_a.ws_url("lobby"), mint("bob")) as bob_again:
            await bob_again.register("calc", [ADD_TOOL])
            invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 2, "b": 2}))
            await bob_again.answer(await bob_again.next_call(), 4)
            assert (await invoke)["result"]["output"] == 4


def keep_killing_subscribers(redis_server: RedisServer, seconds: float) -> None:
    client = redis_server.client()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.client_kill_filter(_type="pubsub")
        time.sleep(0.005)


@pytest.mark.redis
async def test_a_lost_answer_still_ends_the_call_at_its_deadline(two_nodes, own_redis, mint):
    node_a, node_b = two_nodes
    async with (
        await RawPeer.connect(node_b.ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, timeout=2))
        call = await bob.next_call()
        # Keep cutting every pub/sub subscriber off Redis: the answer is published while nobody
        # listens, so it is lost on the way.
        cutting = asyncio.create_task(asyncio.to_thread(keep_killing_subscribers, own_redis, 2.5))
        await asyncio.sleep(0.2)
        await bob.answer(call, 2)
        response = await asyncio.wait_for(invoke, 6)
        await cutting
        assert response["error"]["code"] == ErrorCode.TIMEOUT
        # The mesh recovers: the next call goes through.
        await asyncio.sleep(0.5)
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 2}, timeout=5))
        await bob.answer(await bob.next_call(), 3)
        assert (await invoke)["result"]["output"] == 3


@pytest.mark.redis
async def test_redis_restarting_mid_traffic_ends_every_call_and_the_mesh_recovers(two_nodes, own_redis, mint):
    node_a, node_b = two_nodes
    async with (
        await RawPeer.connect(node_b.ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])

        async def host() -> None:
            while True:
                call = await bob.next_call(timeout=60)
                await bob.answer(call, sum(call["params"]["arguments"].values()))

        hosting = asyncio.create_task(host())
        outcomes: list[str] = []

        async def traffic() -> None:
            for index in range(300):
                response = await alice.invoke("calc", "add", {"a": index, "b": 1}, timeout=2)
                outcomes.append("ok" if "result" in response else response["error"]["data"]["type"])
                await asyncio.sleep(0.01)

        running = asyncio.create_task(traffic())
        await asyncio.sleep(0.5)
        own_redis.stop()
        await asyncio.sleep(1.0)
        own_redis.start()
        await asyncio.wait_for(running, 120)
        hosting.cancel()
        # Every call ended in an answer or a typed error; calls succeed again after the restart.
        assert len(outcomes) == 300
        assert set(outcomes) <= {"ok", "unavailable", "timeout", "participant_gone"}
        assert outcomes[-20:] == ["ok"] * 20
        assert any(outcome != "ok" for outcome in outcomes)
        # Both nodes still route and keep presence: a broadcast crosses them.
        await alice.invoke("messaging", "broadcast", {"type": "chat", "message": "still here"})
        assert (await bob.notification("messaging.message", timeout=5))["message"] == "still here"


def silent_websocket(port: int, path: str) -> socket.socket:
    """Opens a WebSocket by hand and then never reads or answers a ping: a dead peer."""
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


async def test_a_silent_connection_is_closed_by_heartbeats_within_the_bound(mint, transactional_db):
    server = ServerProcess(env={"MESHSITE_WS_PING_INTERVAL": "1", "MESHSITE_WS_PING_TIMEOUT": "1"}).start()
    try:
        async with await RawPeer.connect(server.ws_url("lobby"), mint("witness")) as witness:
            dead = await asyncio.to_thread(silent_websocket, server.port, f"/rooms/lobby/ws?token={mint('ghost')}")
            joined = await witness.notification("participant.joined")
            assert joined["participant"]["identity"] == "ghost"
            started = time.monotonic()
            left = await witness.notification("participant.left", timeout=10)
            assert left["identity"] == "ghost"
            # ping interval + ping timeout + daphne's one-second checker, with slack
            assert time.monotonic() - started < 5
            # The witness itself answers pings and stays.
            assert (await witness.result("ping"))["pong"] is True
            dead.close()
    finally:
        server.stop()


@pytest.mark.redis
async def test_a_node_stopped_gracefully_tells_its_sessions_and_the_other_nodes_at_once(two_nodes, mint):
    node_a, node_b = two_nodes
    async with await RawPeer.connect(node_a.ws_url("lobby"), mint("alice")) as alice:
        bob = await RawPeer.connect(node_b.ws_url("lobby"), mint("bob"))
        await bob.register("calc", [ADD_TOOL])
        invoke = asyncio.create_task(alice.invoke("calc", "add", {"a": 1, "b": 1}, timeout=60))
        await bob.next_call()
        started = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(node_b.stop))
        assert await bob.notification("connection.closing") == {"code": 4503, "reason": "server shutting down"}
        response = await asyncio.wait_for(invoke, 5)
        assert response["error"]["code"] == ErrorCode.PARTICIPANT_GONE
        left = await alice.notification("participant.left")
        assert (left["identity"], left["reason"]) == ("bob", "server shutting down")
        assert time.monotonic() - started < 3
        assert await stopping == 0
