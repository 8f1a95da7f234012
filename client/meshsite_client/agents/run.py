"""`run_agent`: connect, start an agent, serve until told to stop, stop it cleanly, leave."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from ..client import RoomClient
from ..link import TokenSource
from .single_room import SingleRoomAgent


async def run_agent(
    agent: SingleRoomAgent,
    url: str,
    token: TokenSource,
    *,
    stop_event: asyncio.Event | None = None,
    drain_timeout: float = 30.0,
    requires_timeout: float | None = None,
    on_started: Callable[[SingleRoomAgent], Any] | None = None,
    **client_options: Any,
) -> None:
    """Run `agent` in the room at `url` until `stop_event` is set or this task is cancelled.

    Then the agent stops (running calls drain for up to `drain_timeout` s) and leaves the room.
    Returns normally after a stop; raises the client's fatal error (AuthError, Replaced, ...) if
    the connection ended for good first. `on_started(agent)` (sync or async) is called once the
    agent has started. `client_options` go to `RoomClient`.
    """
    stop_event = stop_event or asyncio.Event()
    async with RoomClient(url, token, **client_options) as room:
        await agent.start(room, requires_timeout=requires_timeout)
        closed = asyncio.ensure_future(room.wait_closed())
        stopped = asyncio.ensure_future(stop_event.wait())
        try:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Python 3.11's asyncio.wait_for can swallow a cancellation that lands as its
                # inner await finishes (somewhere in connecting or starting); honour it here.
                raise asyncio.CancelledError()
            if on_started is not None:
                result = on_started(agent)
                if inspect.isawaitable(result):
                    await result
            await asyncio.wait({closed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not closed.done():
                closed.cancel()
            # Also on cancellation: the agent still finishes its running calls before leaving.
            await agent.stop(drain=not room.closed, timeout=drain_timeout)
        if closed.done() and not closed.cancelled():
            closed.result()  # raises the fatal error, if the client ended with one
