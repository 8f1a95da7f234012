"""Every routed call lands in the ledger, written in batches and flushed on a graceful stop."""

import asyncio
import signal
import time

import pytest
from django.conf import settings

from observability.models import ToolCall
from tests.support.peer import ADD_TOOL, RawPeer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def rows_when(count: int, timeout: float = 5, **filters) -> list[ToolCall]:
    deadline = time.monotonic() + timeout
    while True:
        rows = list(ToolCall.objects.filter(**filters).order_by("started_at"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


async def test_participant_hosted_and_builtin_calls_are_recorded(ws_url, mint, project):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("ops", role="service")) as ops,
    ):
        await bob.register("calc", [ADD_TOOL])
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        invoke = asyncio.create_task(
            ops.invoke("calc", "add", {"a": 1, "b": 2}, on_behalf_of_id=alice.id, _meta={"traceparent": traceparent})
        )
        call = await bob.next_call()
        assert call["params"]["_meta"]["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        await bob.answer(call, 3)
        await invoke
        await alice.invoke("participants", "list")
        await alice.invoke("calc", "add", {"a": 1, "b": 2}, timeout=0.2)

    routed, builtin, timed_out = await asyncio.to_thread(rows_when, 3, project=project)
    assert (routed.toolkit, routed.tool, routed.status) == ("calc", "add", "ok")
    assert (routed.caller_identity, routed.on_behalf_of_identity, routed.host_identity) == ("ops", "alice", "bob")
    assert routed.room_name == "lobby"
    assert routed.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert routed.parent_span_id == "00f067aa0ba902b7"
    assert routed.request_bytes > 0 and routed.response_bytes > 0 and routed.latency_ms > 0
    assert (builtin.toolkit, builtin.tool, builtin.host_id, builtin.status) == ("participants", "list", "", "ok")
    assert (timed_out.status, timed_out.error_code) == ("timeout", -32004)


async def test_a_call_whose_caller_left_is_recorded_as_abandoned(ws_url, mint, project):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        await bob.register("calc", [ADD_TOOL])
        alice = await RawPeer.connect(ws_url("lobby"), mint("alice"))
        await alice.send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools.invoke",
                "params": {"toolkit": "calc", "tool": "add", "arguments": {"a": 1, "b": 1}},
            }
        )
        await bob.next_call()
        await alice.ws.close()
        assert (await bob.notification("tools.cancelled"))["reason"] == "caller left"
    [row] = await asyncio.to_thread(rows_when, 1, project=project)
    assert row.status == "abandoned"


async def test_rows_still_buffered_are_written_when_the_server_stops_gracefully(mint, project):
    lazy = ServerProcess(redis_url=settings.REDIS_URL or None, env={"MESHSITE_LEDGER_FLUSH_SECONDS": "3600"}).start()
    try:
        async with await RawPeer.connect(lazy.ws_url("lobby"), mint("alice")) as alice:
            for _ in range(5):
                assert "result" in await alice.invoke("participants", "list")
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(lambda: ToolCall.objects.filter(project=project).count()) == 0
    finally:
        assert lazy.stop(signal.SIGTERM) == 0
    assert len(await asyncio.to_thread(rows_when, 5, 1, project=project)) == 5
