"""The agent host: claims dispatches of Python services and runs each agent as a room participant,
through the same WebSocket protocol as any external client.

Several hosts can run (claims are conditional updates). Each agent runs in its own task: one that
fails to start or crashes ends only its own dispatch. A graceful stop lets every agent finish the
asks in flight (`agent.stop(drain=True)`) before it leaves; a killed host's agents drop their
sockets, so the room sees them leave and calls to them fail at once. A dispatch marked `stopping`
(`agents.actions.do_stop_dispatch`: an operator stopped the agent or disabled its service) is
noticed at the next poll and its agent stopped the same graceful way.

Agent classes are imported by their service's class path, after the directories of
`MESHSITE_AGENT_PATHS` are put in front of `sys.path`.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from .actions import (
    do_claim_dispatches,
    do_end_dispatch,
    do_host_heartbeat,
    do_keep_always_on,
    do_mark_running,
    stopping_dispatches,
)
from .introspection import import_agent_class
from .models import Dispatch
from .tokens import agent_token

logger = logging.getLogger(__name__)
DRAIN_SECONDS = 30.0
ALWAYS_ON_CHECK_SECONDS = 2.0


@dataclass(eq=False)
class RunningAgent:
    dispatch_id: int
    identity: str
    task: "asyncio.Task[None]"
    stop_reason: str | None = None  # set when its dispatch was asked to stop


class AgentHost:
    def __init__(self, ws_base: str, *, max_agents: int = 200) -> None:
        self.ws_base = ws_base.replace("https://", "wss://").replace("http://", "ws://").rstrip("/")
        self.id = f"host-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.max_agents = max_agents
        self.running: dict[int, RunningAgent] = {}
        self.stopping = asyncio.Event()
        self._always_on_checked = -ALWAYS_ON_CHECK_SECONDS

    async def run(self) -> None:
        """Claims and runs dispatches until `stop()`."""
        logger.info("agent host %s serving %s", self.id, self.ws_base)
        beats = asyncio.create_task(self._heartbeat_forever())
        try:
            while not self.stopping.is_set():
                await self._stop_requested()
                await self._keep_always_on()
                await self._claim()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), settings.MESHSITE_AGENT_HOST_POLL_SECONDS)
        finally:
            beats.cancel()

    async def stop(self) -> None:
        """Stops claiming; every agent finishes its in-flight asks and leaves. Safe to call twice:
        a second cancel would cut the first one's drain short."""
        if not self.stopping.is_set():
            self.stopping.set()
            for running in list(self.running.values()):
                running.task.cancel()
        await asyncio.gather(*(r.task for r in list(self.running.values())), return_exceptions=True)

    async def _keep_always_on(self) -> None:
        now = time.monotonic()
        if now - self._always_on_checked < ALWAYS_ON_CHECK_SECONDS:
            return
        self._always_on_checked = now
        try:
            started = await sync_to_async(do_keep_always_on)()
        except Exception:
            logger.exception("agent host: starting always-on services failed; retrying")
            return
        if started:
            logger.info("agent host: dispatched %d always-on service(s)", started)

    async def _claim(self) -> None:
        room_left = self.max_agents - len(self.running)
        if room_left <= 0:
            return
        try:
            dispatches = await sync_to_async(do_claim_dispatches)(self.id, room_left)
        except Exception:
            logger.exception("agent host: claiming dispatches failed; retrying")
            return
        for dispatch in dispatches:
            task = asyncio.create_task(self._run(dispatch), name=f"agent-{dispatch.identity}-{dispatch.pk}")
            self.running[dispatch.pk] = RunningAgent(dispatch.pk, dispatch.identity, task)

    async def _stop_requested(self) -> None:
        """Stops the agents whose dispatches were marked `stopping` (they drain, then leave)."""
        if not self.running:
            return
        try:
            requested = await sync_to_async(stopping_dispatches)(self.id)
        except Exception:
            logger.exception("agent host: reading stop requests failed; retrying")
            return
        for dispatch_id, reason in requested.items():
            running = self.running.get(dispatch_id)
            if running is not None and running.stop_reason is None:
                logger.info("agent %s (dispatch %s): stopping, %s", running.identity, dispatch_id, reason)
                running.stop_reason = reason or "stopped on request"
                running.task.cancel()

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.MESHSITE_AGENT_HOST_STALE_SECONDS / 4)
            try:
                await sync_to_async(do_host_heartbeat)(self.id)
            except Exception:
                logger.exception("agent host: heartbeat failed")

    async def _run(self, dispatch: Dispatch) -> None:
        status, error = Dispatch.Status.STOPPED, ""
        try:
            await self._serve(dispatch)
        except asyncio.CancelledError:
            # a stop asked for through the dispatch keeps the reason given there
            status, error = Dispatch.Status.STOPPED, "agent host stopped"
        except Exception as exc:
            logger.exception("agent %s (dispatch %s) failed", dispatch.identity, dispatch.pk)
            status, error = Dispatch.Status.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            self.running.pop(dispatch.pk, None)
            await sync_to_async(do_end_dispatch)(dispatch.pk, status, error)

    def _stop_asked(self, dispatch_id: int) -> bool:
        running = self.running.get(dispatch_id)
        return running is not None and running.stop_reason is not None

    def _token(self, dispatch: Dispatch, agent: Any) -> str:
        return agent_token(dispatch.room, dispatch.identity, agent)

    def _instantiate(self, dispatch: Dispatch) -> Any:
        service = dispatch.service
        agent_class = import_agent_class(service.class_path)
        options = {**service.config, "name": dispatch.identity}
        # the service's title and description are the ones listed: the agent shows the same
        for key in ("title", "description"):
            if getattr(service, key):
                options[key] = getattr(service, key)
        agent = agent_class(**options)
        agent.call_arguments = dispatch.arguments
        return agent

    async def _serve(self, dispatch: Dispatch) -> None:
        from meshsite_client import RoomClient

        agent = await sync_to_async(self._instantiate)(dispatch)
        url = f"{self.ws_base}/rooms/{dispatch.room.name}/ws"
        # A provider, not a token: the client refreshes it over the live connection before it
        # expires, so the agent keeps its participant id, its in-flight asks and its dispatch.
        room = RoomClient(url, lambda: self._token(dispatch, agent))
        await room.connect()
        try:
            await agent.start(room)
            if self.stopping.is_set() or self._stop_asked(dispatch.pk):
                # A stop that landed while connecting or starting can be swallowed on Python 3.11.
                raise asyncio.CancelledError
            if not await sync_to_async(do_mark_running)(dispatch.pk, room.participant.id):
                raise asyncio.CancelledError  # stopped before it had joined
            try:
                await room.wait_closed()
            except asyncio.CancelledError:
                await asyncio.shield(agent.stop(drain=True, timeout=DRAIN_SECONDS))
                raise
        finally:
            await asyncio.shield(room.close())
