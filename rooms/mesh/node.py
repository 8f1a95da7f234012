"""One server process's share of the mesh: its sessions, room caches, bus, router and ledger."""

import asyncio
import atexit
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any, cast

import redis
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from meshsite_client.protocol import CloseCode, encode_frame, utf8_size

from meshsite.errors import ErrorCode, MeshError
from meshsite.limits import LIMITS
from observability.ledger import Ledger
from toolkits.base import Caller, RoomView
from toolkits.invocation import InvokeRequest

from ..actions.participants import do_join, do_leave, do_leave_nodes
from ..events import EventForwarder, discard_events, forward_committed_events, room_group, run_action, send_room_event
from ..models import Room
from ..selectors import load_room_snapshot, nodes_with_participants
from ..tokens import TokenClaims
from .bus import Bus, LocalBus, RedisBus
from .frames import ready_frames
from .messages import AnswerMessage, CallMessage, CancelMessage, Kind, NotifyMessage, ProgressMessage
from .router import Router
from .session import Session
from .state import RoomState

logger = logging.getLogger(__name__)
# participant.left reasons that close the session this node holds, with the close code
# (WebSocket stacks let a server send only 1000 or 3000-4999 itself, so "going away" is 4503.)
CLOSE_ON_LEFT = {"replaced": CloseCode.REPLACED, "node lost": CloseCode.GOING_AWAY, "kicked": CloseCode.FORBIDDEN}
CLOSE_SHUTTING_DOWN = CloseCode.GOING_AWAY
# Room events about presence; a token that may not list participants does not receive them.
PRESENCE_EVENTS = frozenset({"participant.joined", "participant.updated", "participant.left"})


def make_bus(node_id: str) -> Bus:
    if settings.REDIS_URL:
        return RedisBus(
            node_id,
            settings.REDIS_URL,
            settings.MESHSITE_REDIS_PREFIX,
            ttl=settings.MESHSITE_NODE_HEARTBEAT_SECONDS * 3,
        )
    return LocalBus(node_id)


class Node:
    def __init__(self) -> None:
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.sessions: dict[str, Session] = {}
        self.rooms: dict[int, RoomState] = {}
        self.room_locks: dict[int, asyncio.Lock] = {}
        self.bus = make_bus(self.id)
        self.ledger = Ledger()
        self.router = Router(self)
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("Meshsite needs a channel layer (CHANNEL_LAYERS['default'])")
        self.layer: BaseChannelLayer = layer
        self.forwarder: EventForwarder | None = None  # committed events of this process's other threads
        self.channel = ""
        self.tasks: list[asyncio.Task[None]] = []
        self.stopped = False
        # nodes seen missing from the heartbeats, and since when
        self.suspects: dict[str, float] = {}

    async def start(self) -> None:
        self.channel = await self.layer.new_channel("node.")
        self.tasks.append(asyncio.create_task(self._read_room_events(), name=f"room-events-{self.id}"))
        self.forwarder = forward_committed_events()
        self.bus.on_reconnect = self.resync
        await self.bus.start(self.on_bus_message)
        self.ledger.start()
        await self.sweep()
        self.tasks.append(asyncio.create_task(self._housekeep(), name=f"housekeeping-{self.id}"))
        atexit.register(self.stop_sync)
        logger.info("mesh node %s started (%s)", self.id, type(self.bus).__name__)

    async def stop(self) -> None:
        """Graceful stop: close every session (4503), tell the other nodes, flush the ledger."""
        if self.stopped:
            return
        atexit.unregister(self.stop_sync)
        for session in list(self.sessions.values()):
            await self.close_session(session, CLOSE_SHUTTING_DOWN, "server shutting down")
        await run_action(do_leave_nodes, {self.id}, "node stopped")
        if self.forwarder is not None:
            await self.forwarder.stop()
        self.stopped = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.ledger.stop()
        await self.bus.stop()

    def stop_sync(self) -> None:
        """At interpreter exit without a graceful stop: no event loop runs any more, so no event
        can be sent; the other nodes notice the missing heartbeat instead."""
        if self.stopped:
            return
        self.stopped = True
        self.ledger.flush_sync()
        try:
            discard_events(do_leave_nodes, {self.id}, "node stopped")
        except Exception:
            logger.exception("could not mark node %s's participants as left", self.id)
        self.bus.forget_sync()

    # --- sessions ----------------------------------------------------------------------------

    async def join(self, room: Room, claims: TokenClaims, send_text: Any, close: Any, replaces: str = "") -> Session:
        state = await self._enter_room(room.pk)
        state.joining += 1
        try:
            participant = await run_action(do_join, room, claims, self.id, replaces)
        finally:
            state.joining -= 1
        record = participant.to_record()
        session = Session(
            participant_id=participant.id,
            identity=claims.identity,
            role=claims.role,
            name=participant.name,
            room_id=room.pk,
            room_name=room.name,
            project_id=room.project_id,
            project_slug=claims.project,
            grants=claims.grants,
            record=record,
            send_text=send_text,
            close=close,
            agent=claims.agent,
        )
        state.add_participant(record, self.id)
        state.local[session.participant_id] = session
        self.sessions[session.participant_id] = session
        participants = list(state.participants.values()) if session.sees_presence else [session.record]
        for frame in ready_frames(session, claims, participants, self.visible_toolkits(session)):
            await self.send(session, frame)
        return session

    # --- what built-in toolkits see (toolkits.base.Mesh) --------------------------------------

    def room_view(self, room_id: int) -> RoomView:
        state = self.rooms[room_id]
        return RoomView(MappingProxyType(state.participants), state.hosted.keys())

    async def invoke_for(
        self,
        caller: Caller,
        request: InvokeRequest,
        on_behalf_of: dict[str, Any] | None,
        traceparent: str | None,
        *,
        authorised: bool,
        on_progress: Callable[[Any], Awaitable[None]] | None,
    ) -> Any:
        session = self.sessions.get(caller.participant_id)
        if session is None:
            raise MeshError(ErrorCode.PARTICIPANT_GONE, "the caller has left the room")
        return await self.router.call(
            session, request, on_behalf_of, traceparent, authorised=authorised, on_progress=on_progress
        )

    async def broadcast(self, room_id: int, method: str, params: dict[str, Any], exclude: str | None) -> None:
        await send_room_event(room_id, method, params, exclude=exclude)

    def toolkits_visible_to(self, caller: Caller, host_id: str | None) -> list[dict[str, Any]]:
        session = self.sessions.get(caller.participant_id)
        return [] if session is None else self.visible_toolkits(session, host_id)

    def visible_toolkits(self, session: Session, host_id: str | None = None) -> list[dict[str, Any]]:
        from toolkits.registry import all_builtins

        state = self.rooms[session.room_id]
        records: list[dict[str, Any]] = []
        if host_id is None:
            records += [tk.to_record() for tk in all_builtins() if session.grants.may_invoke(tk.name)]
        records += [
            entry.record
            for entry in state.hosted.values()
            if (host_id is None or entry.host_id == host_id) and session.grants.may_invoke(entry.name)
        ]
        return records

    async def leave(self, session: Session, reason: str) -> None:
        if session.closed:
            return
        session.closed = True
        self.sessions.pop(session.participant_id, None)
        state = self.rooms.get(session.room_id)
        if state is not None:
            state.local.pop(session.participant_id, None)
            state.remove_participant(session.participant_id)
        await self.router.session_gone(session)
        await run_action(do_leave, session.participant_id, reason)
        if state is not None:
            await self._exit_room_if_idle(state)

    async def send(self, session: Session, frame: str) -> bool:
        """Sends one frame; False when the session is gone or the frame is over the frame limit
        (callers that can tell someone, do: see Router._answer_frame and the messaging toolkit)."""
        if session.closed:
            return False
        if len(frame) * 4 > LIMITS.max_frame_bytes and utf8_size(frame) > LIMITS.max_frame_bytes:
            logger.warning(
                "not sending a %d-byte frame to %s: over the frame limit (%.100s…)",
                utf8_size(frame),
                session.participant_id,
                frame,
            )
            return False
        try:
            if session.send_now is not None:
                session.send_now(frame)
            else:
                await session.send_text(frame)
        except Exception:
            # A socket that died under us: its disconnect handler does the cleanup.
            logger.debug("send to %s failed", session.participant_id, exc_info=True)
            return False
        return True

    async def notify(self, room_id: int, participant_id: str, frame: str) -> bool:
        """Sends one notification to a participant on whichever node holds it."""
        session = self.sessions.get(participant_id)
        if session is not None:
            return await self.send(session, frame)
        node = self.rooms[room_id].nodes.get(participant_id)
        if node is None:
            return False
        return await self.bus.publish(node, {"k": Kind.NOTIFY, "to": participant_id, "frame": frame})

    # --- rooms -------------------------------------------------------------------------------

    def _room_lock(self, room_id: int) -> asyncio.Lock:
        return self.room_locks.setdefault(room_id, asyncio.Lock())

    async def _enter_room(self, room_id: int) -> RoomState:
        async with self._room_lock(room_id):
            state = self.rooms.get(room_id)
            if state is not None:
                return state
            state = RoomState(room_id)
            self.rooms[room_id] = state
            # Subscribe before loading, so no event falls between the snapshot and the stream.
            await self.layer.group_add(room_group(room_id), self.channel)
            participants, toolkits = await database_sync_to_async(load_room_snapshot)(room_id)
            state.reset(participants, toolkits, self.id)
            state.loaded = True
            for event in state.backlog:
                state.apply(event)
            state.backlog.clear()
            return state

    async def resync(self) -> None:
        """After the bus reconnects: room events may have been lost meanwhile, so reload every
        room cache from the database (the source of truth)."""
        logger.warning("mesh node %s reconnected to Redis; reloading %d room caches", self.id, len(self.rooms))
        for state in list(self.rooms.values()):
            async with self._room_lock(state.room_id):
                participants, toolkits = await database_sync_to_async(load_room_snapshot)(state.room_id)
                state.reset(participants, toolkits, self.id)

    async def _exit_room_if_idle(self, state: RoomState) -> None:
        async with self._room_lock(state.room_id):
            if state.local or state.joining or self.rooms.get(state.room_id) is not state:
                return
            del self.rooms[state.room_id]
            await self.layer.group_discard(room_group(state.room_id), self.channel)

    async def _read_room_events(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("room events: receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            try:
                await self.on_room_event(event)
            except Exception:
                logger.exception("room events: handling %s failed", event.get("method"))

    async def on_room_event(self, event: dict[str, Any]) -> None:
        state = self.rooms.get(event.get("room_id", -1))
        if state is None:
            return
        if not state.loaded:
            state.backlog.append(event)
            return
        state.apply(event)
        method, params, internal = event["method"], event["params"], event["internal"]
        if method == "participant.left":
            session = state.local.get(params["participant_id"])
            if session is not None:
                code = CLOSE_ON_LEFT.get(params["reason"])
                if code is not None:
                    await self.close_session(session, code, params["reason"])
        frame = encode_frame({"jsonrpc": "2.0", "method": method, "params": params})
        exclude = internal.get("exclude")
        toolkit_name = params["toolkit"]["name"] if method == "toolkits.changed" else None
        presence = method in PRESENCE_EVENTS
        thread_id = params.get("thread_id") if method.startswith("threads.") else None
        # [grant section, names]: only sessions that may read every name / none of them (storage)
        readers_of, not_readers_of = internal.get("readers_of"), internal.get("not_readers_of")
        for session in list(state.local.values()):
            if session.participant_id == exclude:
                continue
            if toolkit_name is not None and not session.grants.may_invoke(toolkit_name):
                continue
            if presence and not session.sees_presence:
                continue
            if thread_id is not None and not session.grants.may("threads", "read", thread_id):
                continue
            if readers_of and not all(session.grants.may(readers_of[0], "read", n) for n in readers_of[1]):
                continue
            if not_readers_of and any(session.grants.may(not_readers_of[0], "read", n) for n in not_readers_of[1]):
                continue
            if method == "participant.updated" and params["participant"]["id"] == session.participant_id:
                session.record = params["participant"]
            await self.send(session, frame)

    async def close_session(self, session: Session, code: int, reason: str) -> None:
        frame = encode_frame(
            {"jsonrpc": "2.0", "method": "connection.closing", "params": {"code": int(code), "reason": reason}}
        )
        await self.send(session, frame)
        await session.close(code, reason)
        await self.leave(session, reason)

    # --- other nodes -------------------------------------------------------------------------

    async def on_bus_message(self, message: dict[str, Any]) -> None:
        kind = message.get("k")
        if kind == Kind.CALL:
            await self.router.deliver_call(cast(CallMessage, message))
        elif kind == Kind.ANSWER:
            await self.router.on_answer(cast(AnswerMessage, message))
        elif kind == Kind.PROGRESS:
            await self.router.on_progress(cast(ProgressMessage, message))
        elif kind == Kind.CANCEL:
            await self.router.cancel_hosted(cast(CancelMessage, message))
        elif kind == Kind.NOTIFY:
            notify = cast(NotifyMessage, message)
            session = self.sessions.get(notify["to"])
            if session is not None:
                await self.send(session, notify["frame"])
        else:
            logger.error("bus: unknown message kind %r", kind)

    async def sweep(self) -> None:
        """Marks participants of nodes that stopped heart-beating as left, and fails their calls."""
        if time.monotonic() - self.bus.healthy_since < self.bus.ttl:
            return  # just (re)connected: the other nodes may not have beaten since
        alive = await self.bus.alive_nodes()
        known = await database_sync_to_async(nodes_with_participants)()
        known |= {c.host_node for c in self.router.pending.values() if c.host_node}
        known |= {h.reply_node for h in self.router.hosted.values()}
        # A node is lost once it has been missing for a whole heartbeat TTL, not at its first
        # absence: a Redis that restarts empty forgets every heartbeat at once.
        now = time.monotonic()
        missing = known - alive
        self.suspects = {node: self.suspects.get(node, now) for node in missing}
        lost = {node for node, since in self.suspects.items() if now - since >= self.bus.ttl}
        if not lost:
            return
        for node in lost:
            del self.suspects[node]
        await self.router.nodes_lost(lost)
        left = await run_action(do_leave_nodes, lost, "node lost")
        logger.warning("nodes %s stopped heart-beating: %d of their participants marked as left", lost, left)

    async def _housekeep(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(settings.MESHSITE_NODE_HEARTBEAT_SECONDS)
            try:
                await self.bus.heartbeat()
                beats += 1
                if beats % 3 == 0:
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("housekeeping: Redis is unavailable (%s); retrying", exc)
            except Exception:
                logger.exception("housekeeping failed; retrying")


_nodes: dict[asyncio.AbstractEventLoop, "asyncio.Future[Node]"] = {}


async def get_node() -> Node:
    """The node of the running event loop, started on first use."""
    loop = asyncio.get_running_loop()
    future = _nodes.get(loop)
    if future is None:
        future = loop.create_future()
        _nodes[loop] = future
        node = Node()
        try:
            await node.start()
        except BaseException as exc:
            del _nodes[loop]
            future.set_exception(exc)
            raise
        future.set_result(node)
    return await asyncio.shield(future)


async def stop_node() -> None:
    """Stops the running loop's node, if any (tests, graceful shutdown hooks)."""
    future = _nodes.pop(asyncio.get_running_loop(), None)
    if future is not None and future.done() and not future.exception():
        await future.result().stop()
