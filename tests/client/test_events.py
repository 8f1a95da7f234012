"""The event bus: bounded subscriber queues, waiters, callbacks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from meshsite_client import ConnectionLost
from meshsite_client.events import EventBus


@pytest.mark.asyncio
async def test_a_slow_subscriber_loses_its_oldest_events_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    stream = bus.stream(maxsize=2)
    with caplog.at_level(logging.WARNING, logger="meshsite_client.events"):
        for i in range(5):
            bus.emit("tick", {"i": i})
    assert stream.dropped == 3
    assert "too slow" in caplog.text
    assert [(await stream.__anext__())["i"] for _ in range(2)] == [3, 4]


@pytest.mark.asyncio
async def test_a_stream_only_sees_the_methods_it_asked_for() -> None:
    bus = EventBus()
    stream = bus.stream(("b",))
    bus.emit("a", {})
    bus.emit("b", {"x": 1})
    assert (await stream.__anext__()).params == {"x": 1}


@pytest.mark.asyncio
async def test_streams_end_after_the_queued_events_when_the_bus_closes() -> None:
    bus = EventBus()
    stream = bus.stream()
    bus.emit("a", {"n": 1})
    bus.close()
    assert [event.method async for event in stream] == ["a"]
    assert [event async for event in bus.stream()] == []


@pytest.mark.asyncio
async def test_wait_for_matches_the_predicate_and_times_out_otherwise() -> None:
    bus = EventBus()
    waiter = asyncio.create_task(bus.wait_for("joined", lambda p: p["who"] == "bob", 1))
    await asyncio.sleep(0)
    bus.emit("joined", {"who": "alice"})
    bus.emit("joined", {"who": "bob"})
    assert (await waiter)["who"] == "bob"
    with pytest.raises(TimeoutError):
        await bus.wait_for("joined", None, 0.01)


@pytest.mark.asyncio
async def test_waiters_fail_when_the_bus_closes() -> None:
    bus = EventBus()
    waiter = asyncio.create_task(bus.wait_for("x", None, 5))
    await asyncio.sleep(0)
    bus.close()
    with pytest.raises(ConnectionLost):
        await waiter


@pytest.mark.asyncio
async def test_callbacks_may_be_sync_or_async_and_a_failing_one_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[Any] = []

    async def later(params: dict[str, Any]) -> None:
        seen.append(("async", params["n"]))

    def broken(params: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    bus.on("*", broken)
    off = bus.on("e", lambda p: seen.append(("sync", p["n"])))
    bus.on("e", later)
    bus.emit("e", {"n": 1})
    await asyncio.sleep(0.01)
    off()
    bus.emit("e", {"n": 2})
    await asyncio.sleep(0.01)
    assert seen == [("sync", 1), ("async", 1), ("async", 2)]
    assert "nope" in caplog.text
