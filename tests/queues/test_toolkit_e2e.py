"""The `queues` toolkit over a real server and real WebSockets: producers and consumers share a
queue, receive long-polls, grants decide per queue, and bad input gets a clear error."""

import asyncio
import time

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def output(peer: RawPeer, tool: str, arguments: dict | None = None, timeout: float = 5) -> dict:
    response = await peer.invoke("queues", tool, arguments or {}, timeout=timeout)
    assert "result" in response, response
    return response["result"]["output"]


async def error(peer: RawPeer, tool: str, arguments: dict) -> dict:
    response = await peer.invoke("queues", tool, arguments)
    assert "error" in response, response
    return response["error"]


async def test_a_user_sends_and_an_agent_receives_and_acks(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot,
    ):
        assert "queues" in [t["name"] for t in robot.ready["toolkits"]]
        sent = await output(alice, "send", {"queue": "orders", "body": {"pizza": "margherita"}})
        [message] = (await output(robot, "receive", {"queue": "orders", "visibility_timeout": 10}))["messages"]
        assert message["message_id"] == sent["message_id"]
        assert (message["body"], message["sent_by"], message["attempt"]) == ({"pizza": "margherita"}, "alice", 1)
        assert await output(alice, "stats", {"queue": "orders"}) == {
            "visible": 0,
            "in_flight": 1,
            "delayed": 0,
            "dead": 0,
        }
        # users may send but, by default, not receive
        denied = await error(alice, "receive", {"queue": "orders"})
        assert denied["code"] == ErrorCode.PERMISSION_DENIED
        lease = {"queue": "orders", "message_id": message["message_id"], "receipt": message["receipt"]}
        assert (await output(robot, "extend", {**lease, "visibility_timeout": 30}))["visible_at"].endswith("Z")
        assert await output(robot, "ack", lease) == {"acked": True}
        gone = await error(robot, "ack", lease)
        assert gone["code"] == ErrorCode.NOT_FOUND and "orders" in gone["message"]


async def test_a_consumer_that_lost_its_lease_cannot_ack(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("slow", role="agent")) as slow,
        await RawPeer.connect(ws_url("lobby"), mint("fast", role="agent")) as fast,
    ):
        await output(slow, "send", {"queue": "jobs", "body": 1})
        [first] = (await output(slow, "receive", {"queue": "jobs", "visibility_timeout": 0.5}))["messages"]
        assert (await output(fast, "receive", {"queue": "jobs"}))["messages"] == []
        [second] = (await output(fast, "receive", {"queue": "jobs", "wait": 3}))["messages"]
        assert (second["message_id"], second["attempt"]) == (first["message_id"], 2)
        stale = await error(
            slow, "ack", {"queue": "jobs", "message_id": first["message_id"], "receipt": first["receipt"]}
        )
        assert stale["code"] == ErrorCode.CONFLICT and "stale receipt" in stale["message"]
        lease = {"queue": "jobs", "message_id": second["message_id"], "receipt": second["receipt"]}
        assert await output(fast, "ack", lease) == {"acked": True}


async def test_receive_waits_for_a_message_and_wakes_when_one_is_sent(ws_url, mint):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot,
    ):
        started = time.monotonic()
        assert (await output(robot, "receive", {"queue": "idle", "wait": 0.6}))["messages"] == []
        assert 0.55 <= time.monotonic() - started < 3
        waiting = asyncio.create_task(output(robot, "receive", {"queue": "wake", "wait": 15}, timeout=20))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        sent_at = time.monotonic()
        await output(alice, "send", {"queue": "wake", "body": "now"})
        [message] = (await waiting)["messages"]
        assert message["body"] == "now"
        # promptly (the wake-up itself is tested in test_waiters.py; a poll would also come within 1 s)
        assert time.monotonic() - sent_at < 1.5


async def test_nack_retries_then_dead_letters_with_the_error(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        sent = await output(robot, "send", {"queue": "poison", "body": {"bad": True}})
        for attempt in range(1, 6):
            [message] = (await output(robot, "receive", {"queue": "poison", "wait": 2}))["messages"]
            assert message["attempt"] == attempt
            lease = {"queue": "poison", "message_id": message["message_id"], "receipt": message["receipt"]}
            await output(robot, "nack", {**lease, "error": f"KeyError: 'x' ({attempt})", "retry_delay": 0})
        assert (await output(robot, "stats", {"queue": "poison"}))["dead"] == 1
        [dead] = (await output(robot, "peek", {"queue": "poison.dlq"}))["messages"]
        assert (dead["message_id"], dead["last_error"], dead["dead_attempts"]) == (
            sent["message_id"],
            "KeyError: 'x' (5)",
            5,
        )
        assert "receipt" not in dead
        listed = {q["name"]: q for q in (await output(robot, "list"))["queues"]}
        assert (listed["poison"]["dead"], listed["poison.dlq"]["visible"]) == (1, 1)


async def test_grants_decide_per_queue(ws_url, mint):
    grants = {"queues": {"send": ["orders"], "receive": ["orders*"]}}
    async with (
        await RawPeer.connect(ws_url("grants"), mint("ops", role="service", room="grants")) as ops,
        await RawPeer.connect(ws_url("grants"), mint("clerk", room="grants", grants=grants)) as clerk,
        await RawPeer.connect(
            ws_url("grants"), mint("nobody", room="grants", grants={"queues": {"send": [], "receive": []}})
        ) as nobody,
    ):
        await output(ops, "send", {"queue": "secret", "body": "x"})
        await output(ops, "send", {"queue": "orders.dlq", "body": "dead"})
        await output(clerk, "send", {"queue": "orders", "body": "o"})
        for tool, arguments in [
            ("send", {"queue": "secret", "body": 1}),
            ("receive", {"queue": "secret"}),
            ("peek", {"queue": "secret"}),
            ("stats", {"queue": "secret"}),
            ("ack", {"queue": "secret", "message_id": "m_0", "receipt": "r"}),
            ("nack", {"queue": "secret", "message_id": "m_0", "receipt": "r"}),
            ("extend", {"queue": "secret", "message_id": "m_0", "receipt": "r", "visibility_timeout": 1}),
            ("send", {"queue": "orders.dlq", "body": 1}),
        ]:
            refused = await error(clerk, tool, arguments)
            assert refused["code"] == ErrorCode.PERMISSION_DENIED, (tool, refused)
        assert [m["body"] for m in (await output(clerk, "receive", {"queue": "orders.dlq"}))["messages"]] == ["dead"]
        assert [q["name"] for q in (await output(clerk, "list"))["queues"]] == ["orders", "orders.dlq"]
        assert (await output(nobody, "list"))["queues"] == []
        assert (await error(nobody, "send", {"queue": "orders", "body": 1}))["code"] == ErrorCode.PERMISSION_DENIED
        assert len((await output(ops, "list"))["queues"]) == 3


async def test_bad_input_gets_a_clear_error_and_the_server_keeps_serving(ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        for tool, arguments in [
            ("send", {"queue": "Bad Name", "body": 1}),
            ("send", {"queue": "q"}),
            ("send", {"queue": "q", "body": 1, "delay": -1}),
            ("receive", {"queue": "q", "wait": 60}),
            ("receive", {"queue": "q", "max_messages": 0}),
            ("ack", {"queue": "q", "message_id": "m_1"}),
            ("extend", {"queue": "q", "message_id": "m_1", "receipt": "r", "visibility_timeout": 0}),
        ]:
            refused = await error(robot, tool, arguments)
            assert refused["code"] in (ErrorCode.INVALID_PARAMS, ErrorCode.INVALID_ARGUMENTS), (tool, refused)
        too_big = await error(robot, "send", {"queue": "q", "body": "x" * (300 * 1024)})
        assert too_big["code"] == ErrorCode.PAYLOAD_TOO_LARGE and "262144 bytes" in too_big["message"]
        unknown = await error(robot, "ack", {"queue": "q", "message_id": "m_nope", "receipt": "r"})
        assert unknown["code"] == ErrorCode.NOT_FOUND
        assert (await output(robot, "send", {"queue": "q", "body": "still serving"}))["message_id"].startswith("m_")
