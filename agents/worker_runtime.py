"""Runs Worker agents for the task that processes their messages (agents/workers.py).

Each process (a Celery pool child, or the web process on the embedded default) keeps one event
loop on a daemon thread. A Worker joins its room through the normal WebSocket protocol, like the
agent host's agents (token minted here: role agent, vouched as that agent, not a singleton so each
process may hold its own connection), and stays there between messages for
MESHSITE_WORKER_IDLE_SECONDS: a burst of messages pays for one connection, and the room sees the
Worker while it works (its `worker` attribute says `working` with the message id, or `idle`).

The task's own thread waits for `process_message` on that loop and renews the message's and the
slot's leases meanwhile, so a long job is never delivered twice while its worker lives. The task
never runs the loop itself: on the embedded default its thread is a background thread, never the
web server's event loop or its database thread.
"""

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from meshsite_client.errors import MeshError

from queues.actions import do_extend
from queues.delivery import Delivery
from queues.errors import MessageGone, StaleReceipt
from rooms.models import Room

from .introspection import import_agent_class
from .models import Service
from .tokens import agent_token

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0
_local_web_url = ""


class WorkerFailed(Exception):
    """`process_message` raised: `error` is what the message is nacked with."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class WorkerUnavailable(Exception):
    """The Worker could not join its room (web node down, bad class): a task-level, retried failure."""


def serve_locally(http_url: str) -> None:
    """The embedded default: Workers connect to this process's own web server."""
    global _local_web_url
    _local_web_url = http_url


def web_url() -> str:
    url = settings.MESHSITE_WORKER_URL or settings.MESHSITE_PUBLIC_URL or _local_web_url or "http://127.0.0.1:8000"
    return url.replace("https://", "wss://").replace("http://", "ws://").rstrip("/")


@dataclass(eq=False)
class LiveWorker:
    agent: Any
    client: Any
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0
    pending_state: dict[str, Any] | None = None
    publisher: "asyncio.Task[None] | None" = None

    def show(self, state: dict[str, Any]) -> None:
        """Publishes the Worker's `worker` attribute off the message's path: sent in order, the
        latest state only when several wait (a very short job may show only as idle)."""
        self.pending_state = state
        if self.publisher is None or self.publisher.done():
            self.publisher = asyncio.ensure_future(self._publish())

    async def _publish(self) -> None:
        while self.pending_state is not None:
            state, self.pending_state = self.pending_state, None
            if not self.client.connected:
                return
            try:
                await self.client.set_attributes({"worker": state})
            except MeshError as exc:
                logger.warning("worker %s: could not publish its state: %s", self.agent.name, exc)


class Runtime:
    """The process's loop thread and the Workers connected from it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.live: dict[tuple[int, int, str], LiveWorker] = {}
        self.connecting: dict[tuple[int, int, str], asyncio.Lock] = {}
        self.thread = threading.Thread(target=self._run, name="worker-agents", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self._reap_idle())
        self.loop.run_forever()

    def submit(self, coro: Any) -> "concurrent.futures.Future[Any]":
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def worker(self, service: Service, room: Room, agent: Any, token: Any) -> LiveWorker:
        key = _key(service, room)
        lock = self.connecting.setdefault(key, asyncio.Lock())
        async with lock:
            live = self.live.get(key)
            if live is not None and live.client.connected:
                return live
            if live is not None:
                await self._stop(key, live)
            from meshsite_client import RoomClient

            client = RoomClient(f"{web_url()}/rooms/{room.name}/ws", token)
            try:
                await asyncio.wait_for(client.connect(), CONNECT_TIMEOUT)
                await agent.start(client)
            except BaseException:
                await asyncio.shield(client.close())
                raise
            live = LiveWorker(agent, client)
            self.live[key] = live
            logger.info("worker %s joined room %s as %s", service.name, room.name, client.participant.id)
            return live

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for key, live in list(self.live.items()):
                idle = live.busy == 0 and now - live.last_used > settings.MESHSITE_WORKER_IDLE_SECONDS
                if idle or not live.client.connected:
                    await self._stop(key, live)

    async def _stop(self, key: tuple[int, int, str], live: LiveWorker) -> None:
        if self.live.get(key) is live:
            del self.live[key]
        if live.publisher is not None:
            live.publisher.cancel()
        try:
            await live.agent.stop(drain=True, timeout=5)
        finally:
            await live.client.close()


def _key(service: Service, room: Room) -> tuple[int, int, str]:
    # a changed service (config, class) gets a new agent; the old one idles out
    return (service.pk, room.pk, service.updated_at.isoformat())


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's runtime (a forked child gets its own, never its parent's loop)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = Runtime()
        return _runtime


def _instantiate(service: Service) -> Any:
    from meshsite_client.agents import Worker

    agent_class = import_agent_class(service.class_path)
    if not isinstance(agent_class, type) or not issubclass(agent_class, Worker):
        raise WorkerUnavailable(f"{service.class_path!r} is not a meshsite_client.agents.Worker")
    options = {**service.config, "name": service.name}
    for key in ("title", "description"):
        if getattr(service, key):
            options[key] = getattr(service, key)
    return agent_class(**options)


def _token_source(service: Service, room: Room, agent: Any) -> Any:
    # one instance per message may be in the room at once
    return lambda: agent_token(room, service.name, agent, singleton=False)


def connect(service: Service, room: Room) -> None:
    """Makes sure the Worker is in the room (before a message is leased: a Worker that cannot join
    must not use up a message's deliveries). Raises WorkerUnavailable."""
    rt = runtime()
    live = rt.live.get(_key(service, room))
    if live is not None and live.client.connected:
        return  # the usual case: it stayed in the room since its last message
    try:
        agent = _instantiate(service)
        future = rt.submit(rt.worker(service, room, agent, _token_source(service, room, agent)))
        future.result(CONNECT_TIMEOUT + 5)
    except WorkerUnavailable:
        raise
    except Exception as exc:
        raise WorkerUnavailable(f"worker {service.name!r} could not join room {room.name!r}: {exc}") from exc


def run_message(service: Service, room: Room, binding: Any, delivery: Delivery, *, holder: str) -> Any:
    """Runs `process_message` for the delivery on the process's loop, renewing the leases while it
    runs. Returns its result; raises WorkerFailed with the error it raised."""
    from .workers import do_extend_slot

    rt = runtime()
    future = rt.submit(_process(rt, _key(service, room), delivery))
    renew_every = max(0.5, binding.visibility_timeout / 3)
    # `wait`, not `result(timeout)`: a TimeoutError raised by process_message itself is its failure
    while not concurrent.futures.wait([future], timeout=renew_every).done:
        try:
            do_extend(
                room=room,
                queue=delivery.queue,
                message_id=delivery.message_id,
                receipt=delivery.receipt,
                visibility_timeout=binding.visibility_timeout,
            )
        except (MessageGone, StaleReceipt):
            logger.warning("worker %s: lost the lease of message %s", service.name, delivery.message_id)
        do_extend_slot(service.pk, room.pk, holder, binding.visibility_timeout)
    try:
        return future.result()
    except WorkerFailed:
        raise
    except Exception as exc:
        raise WorkerFailed(f"{type(exc).__name__}: {exc}") from exc


async def _process(rt: Runtime, key: tuple[int, int, str], delivery: Delivery) -> Any:
    from meshsite_client.agents import WorkerMessage

    live = rt.live.get(key)
    if live is None:
        raise WorkerFailed("the worker left its room before the message was processed")
    message = WorkerMessage(
        id=delivery.message_id,
        body=delivery.body,
        attempt=delivery.attempt,
        queue=delivery.queue,
        sent_by=delivery.sent_by,
        sent_at=delivery.sent_at.isoformat(),
        last_error=delivery.last_error,
    )
    live.busy += 1
    live.show({"state": "working", "message_id": message.id, "attempt": message.attempt})
    try:
        return _jsonable(await live.agent.process_message(message))
    finally:
        live.busy -= 1
        live.last_used = time.monotonic()
        if live.busy == 0:
            live.show({"state": "idle"})


def _jsonable(result: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(result)
