"""`SingleRoomAgent`: an agent bound to one room connection, with a start/stop lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConnectionLost, MeshError
from ..tools import Tool, Toolkit
from .base import Agent
from .errors import AgentStopped, MissingToolkits

if TYPE_CHECKING:
    from ..client import RoomClient

log = logging.getLogger("meshsite_client.agents")

# After the drain timeout, cancelled handlers still get this long to send their error answers.
CANCEL_GRACE = 5.0


class SingleRoomAgent(Agent):
    """An agent living in one room.

    `await agent.start(room)` waits for the toolkits in `requires`, registers the toolkits from
    `exposed_toolkits()` (by default the class's `toolkits`), publishes `agent_attributes()` as
    participant attributes and calls `on_start()`. `await agent.stop()` refuses new calls, lets
    the running ones finish (`drain`), calls `on_stop()` and unregisters the toolkits.
    """

    requires: list[str] = []
    toolkits: list[Toolkit] = []
    requires_timeout: float = 30.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requires = list(self.requires)
        self.toolkits = list(self.toolkits)
        self._room: RoomClient | None = None
        self._registered: list[str] = []
        self._accepting = False
        self._started = False
        # Tasks running one of this agent's handlers, and the handlers' own tasks inside them;
        # `_hosting` keeps a task until it is done, i.e. until its answer has been sent.
        self._calls: dict[asyncio.Task[Any], asyncio.Future[Any]] = {}
        self._hosting: set[asyncio.Task[Any]] = set()
        self._stop_cancelled: set[asyncio.Future[Any]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def room(self) -> RoomClient:
        if self._room is None:
            raise MeshError(f"agent {self.name or type(self).__name__!r} is not started: call `await start(room)`")
        return self._room

    @property
    def started(self) -> bool:
        return self._started

    @property
    def in_flight(self) -> int:
        """How many calls to this agent's toolkits are running right now."""
        return len(self._calls)

    # -- hooks -----------------------------------------------------------------------------

    def exposed_toolkits(self) -> list[Toolkit]:
        """The toolkits this agent registers when it starts. Override to add or compute some."""
        return list(self.toolkits)

    async def on_start(self) -> None:
        """Called once the agent is registered in the room."""

    async def on_stop(self) -> None:
        """Called while stopping, after the running calls finished, before unregistering."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, room: RoomClient, *, requires_timeout: float | None = None) -> None:
        if self._started or self._room is not None:
            raise MeshError(f"agent {self.name!r} is already started")
        self._room = room
        if not self.name:
            self.name = room.participant.identity
        try:
            await self.wait_for_requirements(self.requires_timeout if requires_timeout is None else requires_timeout)
            self._accepting = True
            for toolkit in self.exposed_toolkits():
                await room.register_toolkit(self._tracked(toolkit))
                self._registered.append(toolkit.name)
            await room.set_attributes(self.agent_attributes())
            # A reconnect gives a new participant, without attributes; toolkits the client
            # re-registers itself.
            self._unsubscribe = room.on("connection.restored", self._restored)
            await self.on_start()
        except BaseException:
            self._accepting = False
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            await self._unregister_all()
            await self._unpublish()
            self._room = None
            raise
        self._started = True
        log.info("agent %s started in room %s", self.name, room.room.name if room.room else "?")

    async def stop(self, *, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop accepting calls, let running ones finish (up to `timeout` s), then unregister.

        Calls still running after the timeout (or at once when `drain` is false) are cancelled
        and answered with an error. Safe to call twice, and when the connection is already gone.
        """
        if self._room is None:
            return
        self._accepting = False
        current = asyncio.current_task()
        try:
            if drain:
                await self._wait_calls(timeout, exclude=current)
            if self._calls:
                for task, handler in list(self._calls.items()):
                    if task is not current and not handler.done():
                        self._stop_cancelled.add(handler)
                        handler.cancel()
                await self._wait_calls(CANCEL_GRACE, exclude=current)
            try:
                await self.on_stop()
            finally:
                if self._unsubscribe is not None:
                    self._unsubscribe()
                    self._unsubscribe = None
                await self._unregister_all()
                await self._unpublish()
        finally:
            self._started = False
            self._room = None
            log.info("agent %s stopped", self.name)

    async def wait_for_requirements(self, timeout: float) -> None:
        """Wait until every toolkit in `requires` is in the room; MissingToolkits otherwise."""
        room = self.room
        if not self.missing_requirements():
            return

        async def watch() -> None:
            while self.missing_requirements():
                # Subscribed before the next check, with no await in between: nothing is missed.
                await room.wait_for("*", timeout=None)

        try:
            await asyncio.wait_for(watch(), timeout)
        except TimeoutError:
            raise MissingToolkits(self.name, self.missing_requirements(), timeout) from None

    def missing_requirements(self) -> list[str]:
        present = {t.name for t in self.room.toolkits}
        return [name for name in self.requires if name not in present]

    # -- internals -------------------------------------------------------------------------

    async def _wait_calls(self, timeout: float, *, exclude: asyncio.Task[Any] | None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            pending = {task for task in self._hosting if task is not exclude and not task.done()}
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                return
            # The hosting task itself, so the answer has been sent when it is done.
            await asyncio.wait(pending, timeout=remaining)

    async def _unregister_all(self) -> None:
        room = self._room
        while self._registered:
            name = self._registered.pop()
            if room is None or not room.connected:
                continue  # the server unregisters a leaver's toolkits itself
            try:
                await room.unregister_toolkit(name)
            except ConnectionLost:
                pass
            except MeshError as exc:
                log.warning("agent %s: could not unregister toolkit %s: %s", self.name, name, exc)

    async def _unpublish(self) -> None:
        room = self._room
        if room is not None and room.connected and "agent" in room.participant.attributes:
            with contextlib.suppress(MeshError):
                await room.set_attributes({"agent": None})

    async def _restored(self, _params: dict[str, Any]) -> None:
        if self._room is None or not self._accepting:
            return
        try:
            await self._room.set_attributes(self.agent_attributes())
        except MeshError as exc:
            log.warning("agent %s: could not restore its attributes after a reconnect: %s", self.name, exc)

    def _tracked(self, toolkit: Toolkit) -> Toolkit:
        """A copy of `toolkit` whose handlers refuse calls while stopping and are tracked."""
        tracked = copy.copy(toolkit)
        tracked.tools = {name: self._tracked_tool(tool) for name, tool in toolkit.tools.items()}
        return tracked

    def _tracked_tool(self, tool: Tool) -> Tool:
        original = tool.fn
        is_async = tool.is_async
        agent = self

        async def handler(*args: Any, **kwargs: Any) -> Any:
            if not agent._accepting:
                raise AgentStopped(f"agent {agent.name!r} is stopping and takes no new calls")
            task = asyncio.current_task()
            assert task is not None
            if task not in agent._hosting:
                agent._hosting.add(task)
                task.add_done_callback(agent._hosting.discard)
            if is_async:
                inner: asyncio.Future[Any] = asyncio.ensure_future(original(*args, **kwargs))
            else:
                inner = asyncio.ensure_future(_run_sync(original, args, kwargs))
            agent._calls[task] = inner
            try:
                return await inner
            except asyncio.CancelledError:
                if inner in agent._stop_cancelled and not task.cancelling():
                    raise AgentStopped(f"agent {agent.name!r} stopped before this call finished") from None
                raise
            finally:
                agent._calls.pop(task, None)
                agent._stop_cancelled.discard(inner)

        wrapped = copy.copy(tool)
        wrapped.fn = handler
        wrapped.is_async = True
        return wrapped


async def _run_sync(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # Sync handlers run in a worker thread, as the client runs them, so they cannot stall the loop.
    result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result
