"""Helpers for running agents against the real test server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from meshsite_client import RoomClient
from meshsite_client.agents import SingleRoomAgent, run_agent


async def until(room: RoomClient, condition: Callable[[], bool], timeout: float = 5) -> None:
    """Waits until `condition()` holds for the client's state, re-checking after every event."""

    async def watch() -> None:
        while not condition():
            await room.wait_for("*", timeout=None)

    try:
        await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise TimeoutError(f"the room state did not settle within {timeout}s") from None


class Running:
    """An agent served by `run_agent` in a background task."""

    def __init__(self, agent: SingleRoomAgent, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        self.agent = agent
        self.task = task
        self.stop = stop

    async def started(self, timeout: float = 10) -> None:
        async def wait() -> None:
            while not self.agent.started:
                if self.task.done():
                    self.task.result()  # raises what made run_agent fail
                    raise AssertionError("run_agent returned before the agent started")
                await asyncio.sleep(0.02)

        await asyncio.wait_for(wait(), timeout)

    async def finish(self, timeout: float = 15) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout)


@contextlib.asynccontextmanager
async def running(
    agent: SingleRoomAgent, url: str, token: str, *, wait: bool = True, **kw: Any
) -> AsyncIterator[Running]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(agent, url, token, stop_event=stop, **kw))
    handle = Running(agent, task, stop)
    try:
        if wait:
            await handle.started()
        yield handle
    finally:
        if not task.done():
            stop.set()
            try:
                await asyncio.wait_for(task, 15)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


def agent_participant(room: RoomClient, identity: str) -> Any:
    return next((p for p in room.participants.values() if p.identity == identity), None)
