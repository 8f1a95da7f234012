"""Helpers for the client tests that run against a real server (the `server` fixture and friends)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from meshsite_client import RoomClient


async def until(room: RoomClient, condition: Callable[[], bool], timeout: float = 5) -> None:
    """Waits until `condition()` holds for the client's state, re-checking after every event.

    The check and the subscription to the next event happen without an await in between, so no
    event can slip through unnoticed.
    """

    async def watch() -> None:
        while not condition():
            await room.wait_for("*", timeout=None)

    try:
        await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise TimeoutError(f"the room state did not settle within {timeout}s") from None


def poll(fetch: Callable[[], list], count: int, timeout: float = 5) -> list:
    """Blocking: calls `fetch` until it returns at least `count` items or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        items = fetch()
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.05)
