"""Long-poll wake-ups: a `receive` that waits is woken at once by a send committed in the same
process, and otherwise polls with growing intervals (at most `MAX_POLL_INTERVAL` apart), so a
send on another node is seen within about a second without hammering the database."""

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

MAX_POLL_INTERVAL = 1.0

_lock = threading.Lock()
_waiting: dict[tuple[int, str], set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}


def on_message_sent(sender: Any, *, room: int, queue: str, message_id: str, **kwargs: Any) -> None:
    """`message_sent` receiver; runs in whichever thread committed the send."""
    with _lock:
        waiters = list(_waiting.get((room, queue), ()))
    for loop, event in waiters:
        if not loop.is_closed():
            loop.call_soon_threadsafe(event.set)


@asynccontextmanager
async def waiting_for(room_id: int, queue: str) -> AsyncIterator[asyncio.Event]:
    """An event set when a message is sent to the queue in this process while the block runs.
    Registered before the caller looks at the queue, so a send in between is not missed."""
    entry = (asyncio.get_running_loop(), asyncio.Event())
    key = (room_id, queue)
    with _lock:
        _waiting.setdefault(key, set()).add(entry)
    try:
        yield entry[1]
    finally:
        with _lock:
            entries = _waiting.get(key)
            if entries is not None:
                entries.discard(entry)
                if not entries:
                    del _waiting[key]
