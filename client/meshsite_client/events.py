"""Fan-out of notifications to callbacks, async iterators and one-shot waiters.

Everything here is called from the connection's reader loop, so nothing may block it: sync
callbacks run inline (and must be quick), async callbacks become tasks, and iterator queues are
bounded and drop their oldest event when a consumer falls behind.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from .errors import ConnectionLost
from .records import Event

log = logging.getLogger("meshsite_client.events")

Callback = Callable[[dict[str, Any]], Any]
Predicate = Callable[[dict[str, Any]], bool]

_END = object()


def _matches(methods: frozenset[str] | None, method: str) -> bool:
    return methods is None or "*" in methods or method in methods


class EventStream:
    """An async iterator over events; subscribed from creation, so nothing is missed.

    Ends when the client closes (after yielding what was already queued) or on `aclose()`.
    """

    def __init__(self, bus: EventBus, methods: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self._methods = methods
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(1, maxsize))
        self._closed = False
        self.dropped = 0

    def _offer(self, item: Any) -> None:
        if self._closed:
            return
        if item is _END:
            self._closed = True
        elif not _matches(self._methods, item.method):
            return
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                dropped = self._queue.get_nowait()
                if dropped is not _END:
                    self.dropped += 1
                    if self.dropped != 1 and self.dropped % 100:
                        continue  # one warning per hundred drops is enough to notice
                    log.warning(
                        "event subscriber is too slow; dropped %s (%d dropped so far)",
                        getattr(dropped, "method", dropped),
                        self.dropped,
                    )

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        event: Event = item
        return event

    async def aclose(self) -> None:
        self._bus._streams.discard(self)
        self._offer(_END)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class EventBus:
    def __init__(self) -> None:
        self._callbacks: list[tuple[str, Callback]] = []
        # Weak, so a stream the application dropped without aclose() does not live (and fill
        # up) forever.
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._waiters: set[tuple[str, Predicate | None, asyncio.Future[Event]]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._error: BaseException | None = None

    def on(self, method: str, callback: Callback) -> Callable[[], None]:
        """Call `callback(params)` for each `method` event ("*" for all); returns an unsubscriber."""
        entry = (method, callback)
        self._callbacks.append(entry)

        def off() -> None:
            if entry in self._callbacks:
                self._callbacks.remove(entry)

        return off

    def off(self, method: str, callback: Callback) -> None:
        self._callbacks = [e for e in self._callbacks if e != (method, callback)]

    def stream(self, methods: tuple[str, ...] = (), maxsize: int = 1000) -> EventStream:
        stream = EventStream(self, frozenset(methods) if methods else None, maxsize)
        if self._closed:
            stream._offer(_END)
        else:
            self._streams.add(stream)
        return stream

    async def wait_for(self, method: str, predicate: Predicate | None, timeout: float | None) -> Event:
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        if self._closed:
            raise self._closed_error()
        waiter = (method, predicate, future)
        self._waiters.add(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"no {method!r} event within {timeout}s") from None
        finally:
            self._waiters.discard(waiter)

    def emit(self, method: str, params: dict[str, Any]) -> None:
        event = Event(method, params)
        for pattern, callback in list(self._callbacks):
            if pattern in ("*", method):
                self._call(callback, params)
        for stream in list(self._streams):
            stream._offer(event)
        for waiter in list(self._waiters):
            wanted, predicate, future = waiter
            if future.done() or wanted not in ("*", method):
                continue
            try:
                if predicate is not None and not predicate(params):
                    continue
            except Exception as exc:  # a broken predicate fails its waiter, not the reader
                future.set_exception(exc)
                continue
            future.set_result(event)

    def spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        """Run a callback's coroutine in the background, keeping a reference and logging errors."""

        async def guarded() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s raised", what)

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _call(self, callback: Callback, params: dict[str, Any]) -> None:
        try:
            result = callback(params)
        except Exception:
            log.exception("event callback %r raised", callback)
            return
        if inspect.isawaitable(result):
            self.spawn(result, f"event callback {callback!r}")

    def close(self, error: BaseException | None = None) -> None:
        """End every stream and fail pending waiters; callbacks simply stop being called."""
        self._closed = True
        self._error = error
        for stream in list(self._streams):
            stream._offer(_END)
        self._streams.clear()
        for _, _, future in list(self._waiters):
            if not future.done():
                future.set_exception(self._closed_error())
        for task in list(self._tasks):
            task.cancel()

    def _closed_error(self) -> BaseException:
        # A copy per raise, so tracebacks of different waiters do not pile onto one object.
        if self._error is not None:
            return copy.copy(self._error)
        return ConnectionLost("the room client is closed")
