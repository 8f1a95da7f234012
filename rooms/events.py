"""Room events leave only after commit, only from actions.

An event is a protocol notification (`method`, `params`) plus `internal` routing facts that never
reach clients (which node holds a participant, who to exclude). It goes to the room's channel-layer
group, which each server node joins once while it has participants in that room; the node applies
it to its room cache and fans it out to its local connections.

Actions run in a database thread. When the web node runs one (`run_action`), committed events are
collected and sent from the event loop once the action returns: a database thread blocking on the
loop (async_to_sync) would stall it, and hang forever if the loop stops first. Any other thread of a
process whose node runs (the embedded default's in-process background tasks) hands its committed
events to the node's loop (`EventForwarder`), which sends them in order. Elsewhere (Celery,
management commands) they are sent synchronously on commit.
"""

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
_outbox: ContextVar[list[dict[str, Any]] | None] = ContextVar("room_event_outbox", default=None)


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def room_event(room_id: int, method: str, params: dict[str, Any], **internal: Any) -> dict[str, Any]:
    return {"type": "room.event", "room_id": room_id, "method": method, "params": params, "internal": internal}


def send_room_event_on_commit(room_id: int, method: str, params: dict[str, Any], **internal: Any) -> None:
    event = room_event(room_id, method, params, **internal)
    transaction.on_commit(lambda: _committed(event))


def _committed(event: dict[str, Any]) -> None:
    outbox = _outbox.get()
    if outbox is not None:
        outbox.append(event)
        return
    forwarder = _forwarder
    if forwarder is not None and forwarder.loop.is_running():
        forwarder.submit(event)
        return
    layer = get_channel_layer()
    if layer is None:
        logger.error("no channel layer configured; room event %s dropped", event["method"])
        return
    async_to_sync(layer.group_send)(room_group(event["room_id"]), event)


class EventForwarder:
    """Sends, from the node's event loop and in commit order, the room events that other threads
    of the process commit (in-process background tasks on the embedded default).

    async_to_sync there would start a new thread and event loop for every event, about a
    millisecond of CPU under the GIL the node's loop needs, and would touch the in-memory channel
    layer's queues from that foreign loop, which they are not safe for."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread_id = threading.get_ident()  # made on the loop's thread
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = loop.create_task(self._forward(), name="room-event-forwarder")

    def submit(self, event: dict[str, Any]) -> None:
        """From any thread, the loop's own included."""
        if self.thread_id == threading.get_ident():
            self.queue.put_nowait(event)
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:  # the loop closed under us: nobody is left to tell
            logger.error("room event %s dropped: the node's event loop is closed", event["method"])

    async def _forward(self) -> None:
        while True:
            await _group_send(await self.queue.get())

    async def stop(self) -> None:
        """Sends what is queued, then stops; later events go the synchronous way."""
        global _forwarder
        if _forwarder is self:
            _forwarder = None
        await asyncio.sleep(0)  # events submitted just before are queued by now
        while not self.queue.empty():
            await _group_send(self.queue.get_nowait())
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


_forwarder: EventForwarder | None = None


def forward_committed_events() -> EventForwarder:
    """Called on the node's loop when the node starts: from then on, threads hand their
    committed events to it."""
    global _forwarder
    _forwarder = EventForwarder(asyncio.get_running_loop())
    return _forwarder


async def send_room_event(room_id: int, method: str, params: dict[str, Any], **internal: Any) -> None:
    """For events that follow no database write (a broadcast message)."""
    await _group_send(room_event(room_id, method, params, **internal))


async def _group_send(event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    assert layer is not None
    try:
        try:
            await layer.group_send(room_group(event["room_id"]), event)
        except ConnectionError:
            # A pooled connection that Redis closed (a restart) fails once, then reconnects.
            await layer.group_send(room_group(event["room_id"]), event)
    except Exception:
        # The write it follows is committed; nodes resynchronise from the database when the
        # layer's Redis comes back (Node.resync), so losing the event must not fail the request.
        logger.exception("room event %s could not be sent; the channel layer is unavailable", event["method"])


async def run_action(action: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Runs a database action from the event loop, then sends the events it committed."""
    outbox: list[dict[str, Any]] = []
    token = _outbox.set(outbox)
    try:
        return await database_sync_to_async(action)(*args, **kwargs)
    finally:
        _outbox.reset(token)
        for event in outbox:
            await _group_send(event)


@contextmanager
def collect_room_events() -> Iterator[list[dict[str, Any]]]:
    """Collects the events committed inside the block instead of sending them."""
    outbox: list[dict[str, Any]] = []
    token = _outbox.set(outbox)
    try:
        yield outbox
    finally:
        _outbox.reset(token)


def discard_events(action: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Runs an action whose events nobody can receive (at interpreter exit, with no event loop)."""
    token = _outbox.set([])
    try:
        return action(*args, **kwargs)
    finally:
        _outbox.reset(token)
