"""A queue is shared across web nodes: a receive waiting on one node gets a message sent through
another (noticed by polling, at most about a second apart), and leases hold across nodes."""

import asyncio
import time

import pytest

from tests.support.peer import RawPeer

from .test_toolkit_e2e import error, output

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_a_waiting_receive_gets_a_message_sent_through_another_node(two_nodes, mint):
    node_a, node_b = two_nodes
    async with (
        await RawPeer.connect(node_a.ws_url("lobby"), mint("robot", role="agent")) as robot,
        await RawPeer.connect(node_b.ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(node_b.ws_url("lobby"), mint("other", role="agent")) as other,
    ):
        waiting = asyncio.create_task(output(robot, "receive", {"queue": "far", "wait": 15}, timeout=20))
        await asyncio.sleep(3)  # long enough for the poll to back off to its slowest
        sent_at = time.monotonic()
        sent = await output(alice, "send", {"queue": "far", "body": "hello"})
        [message] = (await waiting)["messages"]
        assert message["message_id"] == sent["message_id"]
        assert time.monotonic() - sent_at < 2.5
        # the lease taken through node A holds on node B, and its receipt works there
        assert (await output(other, "receive", {"queue": "far"}))["messages"] == []
        stale = await error(other, "ack", {"queue": "far", "message_id": message["message_id"], "receipt": "x"})
        assert stale["message"].startswith("stale receipt")
        lease = {"queue": "far", "message_id": message["message_id"], "receipt": message["receipt"]}
        assert await output(other, "ack", lease) == {"acked": True}
