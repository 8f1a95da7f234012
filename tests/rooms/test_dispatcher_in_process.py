"""The dispatcher, router and built-ins in one process, with sessions whose sockets are lists.

Fast checks of the frame-level rules; tests/e2e/ covers the same over real sockets and processes.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.db import transaction
from meshsite_client.protocol import ErrorCode

from rooms.actions.rooms import access_room
from rooms.dispatcher import handle_frame
from rooms.events import send_room_event_on_commit
from rooms.mesh.node import Node, get_node, stop_node
from rooms.mesh.ratelimit import TokenBucket
from rooms.mesh.session import Session
from rooms.tokens import mint_token, verify_token
from tests.support.peer import ADD_TOOL

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


class FakeSocket:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code

    def answer(self, request_id: Any) -> dict[str, Any]:
        return next(f for f in self.frames if f.get("id") == request_id and "method" not in f)


@pytest.fixture
async def node(project) -> AsyncIterator[Node]:
    node = await get_node()
    yield node
    await stop_node()


async def join(node: Node, identity: str, **token: Any) -> tuple[Session, FakeSocket]:
    claims = verify_token(mint_token(project="acme", room="lobby", identity=identity, **token)[0])
    room = await asyncio.to_thread(access_room, claims, "lobby")
    socket = FakeSocket()
    session = await node.join(room, claims, socket.send_text, socket.close)
    session.bucket = TokenBucket(5, 5)
    return session, socket


async def request(node: Node, session: Session, text: str) -> None:
    await handle_frame(node, session, text)


async def test_every_refused_frame_gets_its_error_and_the_session_stays(node):
    alice, socket = await join(node, "alice")
    await request(node, alice, '{"jsonrpc":"2.0","id":1,"method":"tools.invoke","params":{"timeout":NaN}}')
    await request(node, alice, '{"jsonrpc":"2.0","id":2,"method":"ping","params":{"a":' + "[" * 200 + "]" * 200 + "}}")
    await request(
        node,
        alice,
        '{"jsonrpc":"2.0","id":3,"method":"participant.set_attributes","params":{"attributes":{"x":"\\ud800"}}}',
    )
    await request(
        node,
        alice,
        '{"jsonrpc":"2.0","id":4,"method":"participant.set_attributes","params":{"attributes":{"x":"a\\u0000"}}}',
    )
    assert socket.answer(1)["error"]["code"] == ErrorCode.INVALID_PARAMS
    deep = next(f for f in socket.frames if f.get("error", {}).get("code") == ErrorCode.INVALID_REQUEST)
    assert "deeper than 64" in deep["error"]["message"]
    assert socket.answer(3)["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert socket.answer(4)["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert not alice.closed


async def test_unsolicited_answers_are_rate_limited_like_requests(node):
    mallory, socket = await join(node, "mallory")
    for index in range(10):
        await request(node, mallory, json.dumps({"jsonrpc": "2.0", "id": f"x{index}", "result": "unasked"}))
    await request(node, mallory, '{"jsonrpc":"2.0","id":99,"method":"ping"}')
    assert socket.answer(99)["error"]["code"] == ErrorCode.RATE_LIMITED


async def ping(node: Node, session: Session, number: int, *, token: bool = False) -> None:
    if token:  # one token arrives, as it does every 1/rate seconds
        assert session.bucket is not None
        session.bucket.tokens = 1.0
    await request(node, session, json.dumps({"jsonrpc": "2.0", "id": number, "method": "ping"}))


async def test_a_flood_that_gets_a_token_now_and_then_is_still_closed(node, settings):
    settings.MESHSITE_FLOOD_CLOSE_AFTER = 10
    mallory, socket = await join(node, "mallory")
    mallory.bucket = TokenBucket(0.001, 1)
    mallory.bucket.take()
    number = 0
    for _ in range(3):  # five refused, one allowed: never ten refusals in a row
        for _ in range(5):
            number += 1
            await ping(node, mallory, number)
        number += 1
        await ping(node, mallory, number, token=True)
        if mallory.closed:
            break
    assert socket.closed_with == 4429
    closing = next(f for f in socket.frames if f.get("method") == "connection.closing")
    assert closing["params"]["reason"] == "rate limit exceeded repeatedly"


async def test_a_client_that_waits_after_each_refusal_is_not_closed(node, settings):
    settings.MESHSITE_FLOOD_CLOSE_AFTER = 10
    alice, socket = await join(node, "alice")
    alice.bucket = TokenBucket(0.001, 1)
    alice.bucket.take()
    for number in range(1, 61, 2):  # refused, then (after retry_after) allowed, 30 times
        await ping(node, alice, number)
        await ping(node, alice, number + 1, token=True)
    assert not alice.closed and socket.closed_with is None
    assert socket.answer(1)["error"]["code"] == ErrorCode.RATE_LIMITED
    assert socket.answer(60)["result"]["pong"] is True


async def test_an_answer_to_a_call_the_session_hosts_is_not_limited(node):
    bob, bob_socket = await join(node, "bob")
    alice, alice_socket = await join(node, "alice")
    await request(
        node,
        bob,
        json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "toolkits.register", "params": {"name": "calc", "tools": [ADD_TOOL]}}
        ),
    )
    bob.bucket = TokenBucket(0.1, 1)  # bob's budget is spent from here on
    bob.bucket.take()
    invoke = {"toolkit": "calc", "tool": "add", "arguments": {"a": 1, "b": 2}}
    await request(node, alice, json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools.invoke", "params": invoke}))
    call = next(f for f in bob_socket.frames if f.get("method") == "tools.call")
    await request(node, bob, json.dumps({"jsonrpc": "2.0", "id": call["id"], "result": 3}))
    assert alice_socket.answer(7)["result"]["output"] == 3


async def test_an_answer_too_large_for_the_caller_becomes_its_error(node, settings):
    settings.MESHSITE_MAX_FRAME_BYTES = 4096
    bob, bob_socket = await join(node, "bob")
    alice, alice_socket = await join(node, "alice")
    echo = {**ADD_TOOL, "output_schema": None}
    await request(
        node,
        bob,
        json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "toolkits.register", "params": {"name": "calc", "tools": [echo]}}
        ),
    )
    invoke = {"toolkit": "calc", "tool": "add", "arguments": {"a": 1, "b": 2}}
    await request(node, alice, json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools.invoke", "params": invoke}))
    call = next(f for f in bob_socket.frames if f.get("method") == "tools.call")
    await request(node, bob, json.dumps({"jsonrpc": "2.0", "id": call["id"], "result": "é" * 4000}))
    error = alice_socket.answer(7)["error"]
    assert (error["code"], error["data"]["limit"]) == (ErrorCode.PAYLOAD_TOO_LARGE, 4096)


async def test_events_committed_on_another_thread_reach_the_room_in_order(node):
    """An in-process background task commits on a thread of its own: its events go through the
    node's loop (rooms.events.EventForwarder), in commit order, not through a loop of their own."""
    _, socket = await join(node, "alice")
    room_id = next(iter(node.rooms))
    assert node.forwarder is not None and node.forwarder.loop is asyncio.get_running_loop()

    def commit_events() -> None:
        for index in range(20):
            with transaction.atomic():
                send_room_event_on_commit(room_id, "test.numbered", {"index": index})

    await asyncio.to_thread(commit_events)
    async with asyncio.timeout(5):
        while sum(f.get("method") == "test.numbered" for f in socket.frames) < 20:
            await asyncio.sleep(0.01)
    indexes = [f["params"]["index"] for f in socket.frames if f.get("method") == "test.numbered"]
    assert indexes == list(range(20))
