"""Hosting `@tool` toolkits with RoomClient and invoking them from another RoomClient, over a real server."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from meshsite_client import (
    Cancelled,
    Conflict,
    InvalidArguments,
    NotFound,
    ParticipantGone,
    PermissionDenied,
    RoomClient,
    Timeout,
    ToolContext,
    ToolFailed,
    Toolkit,
    is_valid_traceparent,
    new_traceparent,
    tool,
)
from meshsite_client.protocol import ErrorCode
from meshsite_client.tracing import trace_id_of
from pydantic import BaseModel

from observability.models import ToolCall

from .live import poll, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


class Point(BaseModel):
    x: float
    y: float


class Seen:
    """What the handlers of one toolkit saw, for assertions on the host's side."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.contexts: list[ToolContext] = []
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.threads: list[threading.Thread] = []


def calc_toolkit(seen: Seen, name: str = "calc", public: bool = True) -> Toolkit:
    @tool
    async def add(a: float, b: float) -> float:
        """Add two numbers."""
        seen.calls.append(("add", (a, b)))
        return a + b

    @tool
    async def scale(point: Point, factor: float = 2) -> Point:
        """Scale a point."""
        seen.calls.append(("scale", point))
        return Point(x=point.x * factor, y=point.y * factor)

    @tool
    async def whoami(ctx: ToolContext) -> dict[str, Any]:
        seen.contexts.append(ctx)
        return {"caller": ctx.caller["identity"], "host": ctx.room.participant.identity}

    @tool
    async def count(steps: int, ctx: ToolContext) -> int:
        for step in range(1, steps + 1):
            await ctx.progress({"step": step})
        return steps

    @tool
    async def wait(ctx: ToolContext) -> str:
        seen.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.cancelled.set()
            raise
        return "never"

    @tool
    def explode(message: str) -> None:
        raise LookupError(message)

    @tool
    def crunch(n: int, ctx: ToolContext) -> int:
        seen.threads.append(threading.current_thread())
        ctx.progress_threadsafe({"crunching": n})
        return n * 2

    return Toolkit(name, [add, scale, whoami, count, wait, explode, crunch], description="Arithmetic", public=public)


async def test_a_registered_toolkit_is_announced_and_invocable_with_typed_arguments(ws_url, mint):
    seen = Seen()
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        announced = asyncio.create_task(alice.wait_for("toolkits.changed", lambda p: p["toolkit"]["name"] == "calc"))
        info = await bob.register_toolkit(calc_toolkit(seen))
        assert (info.name, info.public, info.participant_id) == ("calc", True, bob.participant.id)
        assert info.tool("add") is not None and info.tool("add").input_schema["required"] == ["a", "b"]
        assert "calc" in bob.hosted_toolkits
        assert (await announced)["action"] == "registered"
        await until(
            alice, lambda: any(t.name == "calc" and t.participant_id == bob.participant.id for t in alice.toolkits)
        )

        assert await alice.invoke("calc", "add", {"a": 2, "b": 3}) == 5
        assert seen.calls == [("add", (2.0, 3.0))]
        # A pydantic model argument arrives as an instance; a model return value goes out as JSON.
        assert await alice.invoke("calc", "scale", {"point": {"x": 1, "y": 2}, "factor": 3}) == {"x": 3.0, "y": 6.0}
        assert seen.calls[-1] == ("scale", Point(x=1, y=2))
        assert await alice.invoke("calc", "scale", {"point": {"x": 1, "y": 2}}) == {"x": 2.0, "y": 4.0}


async def test_a_handler_gets_a_tool_context_describing_the_call(ws_url, mint):
    seen = Seen()
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        RoomClient(ws_url("lobby"), mint("ops", role="service")) as ops,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        before = time.time()
        assert await alice.invoke("calc", "whoami", timeout=30) == {"caller": "alice", "host": "bob"}
        ctx = seen.contexts[-1]
        assert (ctx.toolkit, ctx.tool) == ("calc", "whoami")
        assert ctx.call_id.startswith("k_")
        assert ctx.caller["id"] == alice.participant.id and ctx.on_behalf_of is None
        assert ctx.room is bob
        assert ctx.deadline is not None and 25 < ctx.deadline.timestamp() - before < 35
        assert is_valid_traceparent(ctx.traceparent)
        # A service acting for alice: the handler sees both.
        output = await ops.invoke("calc", "whoami", on_behalf_of_id=alice.participant.id)
        assert output == {"caller": "ops", "host": "bob"}
        assert seen.contexts[-1].on_behalf_of is not None
        assert seen.contexts[-1].on_behalf_of["identity"] == "alice"


async def test_progress_from_ctx_progress_reaches_on_progress_in_order_before_the_result(ws_url, mint):
    seen = Seen()
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        progress: list[Any] = []
        assert await alice.invoke("calc", "count", {"steps": 3}, on_progress=progress.append) == 3
        assert progress == [{"step": 1}, {"step": 2}, {"step": 3}]

        # Async callbacks work too, and a sync handler (run in a worker thread) reports progress.
        later: list[Any] = []
        recorded = asyncio.Event()

        async def record(value: Any) -> None:
            later.append(value)
            recorded.set()

        assert await alice.invoke("calc", "crunch", {"n": 21}, on_progress=record) == 42
        await asyncio.wait_for(recorded.wait(), 5)
        assert later == [{"crunching": 21}]
        assert seen.threads and seen.threads[0] is not threading.main_thread()


async def test_call_cancel_ends_the_call_and_cancels_the_running_handler(ws_url, mint):
    seen = Seen()
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        told = asyncio.create_task(bob.wait_for("tools.cancelled"))
        call = await alice.start_invoke("calc", "wait", call_id="c-42")
        assert call.call_id == "c-42"
        await asyncio.wait_for(seen.started.wait(), 5)
        assert await call.cancel() is True
        with pytest.raises(Cancelled):
            await asyncio.wait_for(call.result(), 5)
        assert (await told)["reason"] == "cancelled"
        await asyncio.wait_for(seen.cancelled.wait(), 5)
        assert call.done() and await call.cancel() is False
        assert await alice.invoke("calc", "add", {"a": 1, "b": 1}) == 2  # both sides carry on


async def test_cancelling_the_task_awaiting_an_invoke_cancels_the_call_on_the_server(ws_url, mint):
    seen = Seen()
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        task = asyncio.create_task(alice.invoke("calc", "wait"))
        await asyncio.wait_for(seen.started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(seen.cancelled.wait(), 5)


async def test_a_call_past_its_timeout_fails_with_timeout_and_the_handler_is_cancelled(ws_url, mint):
    seen = Seen()
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        told = asyncio.create_task(bob.wait_for("tools.cancelled"))
        started = time.monotonic()
        with pytest.raises(Timeout) as caught:
            await alice.invoke("calc", "wait", timeout=0.5)
        assert 0.4 < time.monotonic() - started < 3
        assert caught.value.code == ErrorCode.TIMEOUT and not caught.value.data.get("local")  # the server's answer
        assert (await told)["reason"] == "timeout"
        await asyncio.wait_for(seen.cancelled.wait(), 5)


async def test_a_handler_that_raises_fails_the_call_with_tool_failed_and_its_message(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(Seen()))
        with pytest.raises(ToolFailed) as caught:
            await alice.invoke("calc", "explode", {"message": "no such city"})
        error = caught.value
        assert error.code == ErrorCode.TOOL_FAILED
        assert error.data["message"] == "no such city"
        assert "no such city" in str(error)
        assert error.host_error is not None and error.host_error["data"]["exception"] == "LookupError"


async def test_invalid_arguments_are_refused_by_the_server_before_the_handler_runs(ws_url, mint):
    seen = Seen()
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        with pytest.raises(InvalidArguments) as caught:
            await alice.invoke("calc", "add", {"a": "two"})
        paths = {error["path"] for error in caught.value.errors}
        assert "/a" in paths
        assert any("'b' is a required property" in error["message"] for error in caught.value.errors)
        with pytest.raises(InvalidArguments) as caught:
            await alice.invoke("calc", "scale", {"point": {"x": "far", "y": 1}})
        assert [error["path"] for error in caught.value.errors] == ["/point/x"]
        with pytest.raises(InvalidArguments):
            await alice.invoke("calc", "add", {"a": 1, "b": 2, "c": 3})
        assert seen.calls == []
        with pytest.raises(NotFound):
            await alice.invoke("calc", "divide", {"a": 1, "b": 2})


async def test_a_nested_invoke_from_a_handler_stays_in_the_callers_trace(ws_url, mint, project):
    @tool
    async def ask(a: float, b: float, ctx: ToolContext) -> float:
        """Ask the calculator."""
        return await ctx.room.invoke("calc", "add", {"a": a, "b": b})

    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("robot", role="agent")) as robot,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(Seen()))
        await robot.register_toolkit(Toolkit("relay", [ask]))
        traceparent = new_traceparent()
        trace_id = trace_id_of(traceparent)
        assert await alice.invoke("relay", "ask", {"a": 1, "b": 2}, traceparent=traceparent) == 3
        # Outside a handler nothing leaks: this call starts a trace of its own.
        await alice.invoke("participants", "list")

    rows = await asyncio.to_thread(
        poll, lambda: list(ToolCall.objects.filter(project=project).order_by("started_at")), 3
    )
    relay, nested, unrelated = rows
    summary = [(row.toolkit, row.caller_identity, row.host_identity, row.status) for row in (relay, nested)]
    assert summary == [("relay", "alice", "robot", "ok"), ("calc", "robot", "bob", "ok")]
    assert relay.trace_id == nested.trace_id == trace_id
    assert relay.parent_span_id == traceparent.split("-")[2]
    assert nested.parent_span_id == relay.span_id
    assert unrelated.toolkit == "participants" and unrelated.trace_id != trace_id and unrelated.parent_span_id == ""


async def test_a_private_toolkit_is_reached_by_naming_its_host(ws_url, mint):
    @tool
    async def whose(ctx: ToolContext) -> str:
        return ctx.room.participant.identity

    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("carol")) as carol,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        for host in (bob, carol):
            info = await host.register_toolkit(Toolkit("ui", [whose], public=False))
            assert info.public is False
        await until(alice, lambda: sum(t.name == "ui" for t in alice.toolkits) == 2)
        with pytest.raises(PermissionDenied, match="participant_id"):
            await alice.invoke("ui", "whose")
        assert await alice.invoke("ui", "whose", participant_id=bob.participant.id) == "bob"
        assert await alice.invoke("ui", "whose", participant_id=carol.participant.id) == "carol"
        assert [t.name for t in await alice.list_toolkits(carol.participant.id)] == ["ui"]


async def test_a_taken_public_name_is_a_conflict_and_is_not_kept_for_reconnects(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(Seen()))
        with pytest.raises(Conflict):
            await alice.register_toolkit(calc_toolkit(Seen()))
        assert alice.hosted_toolkits == {}


async def test_unregistering_removes_the_toolkit_for_everyone(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(Seen()))
        await until(alice, lambda: any(t.name == "calc" for t in alice.toolkits))
        assert await bob.unregister_toolkit("calc") is True
        assert bob.hosted_toolkits == {}
        await until(alice, lambda: not any(t.name == "calc" for t in alice.toolkits))
        with pytest.raises(NotFound):
            await alice.invoke("calc", "add", {"a": 1, "b": 1})


async def test_a_host_that_closes_fails_the_calls_in_flight_at_once_and_cancels_its_handlers(ws_url, mint):
    seen = Seen()
    async with RoomClient(ws_url("lobby"), mint("alice")) as alice:
        bob = await RoomClient(ws_url("lobby"), mint("bob")).connect()
        await bob.register_toolkit(calc_toolkit(seen))
        call = alice.start_invoke("calc", "wait", timeout=60)
        await asyncio.wait_for(seen.started.wait(), 5)
        await bob.close()
        assert seen.cancelled.is_set()
        with pytest.raises(ParticipantGone, match="bob"):
            await asyncio.wait_for(call.result(), 5)
        await until(alice, lambda: not any(t.name == "calc" for t in alice.toolkits))
