"""Runs one web node: daphne serving Studio, admin, REST and the room WebSocket.

Unlike a bare `daphne meshsite.asgi:application`, this applies Meshsite's WebSocket limits
(frame size, pings, connection age) and flushes the ledger on a graceful stop.
"""

import asyncio
import logging
import os
import struct
import time
from collections import deque
from functools import cached_property
from typing import TYPE_CHECKING, Any

import daphne.server
from channels.routing import get_default_application
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from meshsite_client.protocol import CloseCode
from twisted.internet import defer

from files.streaming import create_streaming_application, wait_for_drain
from meshsite.limits import LIMITS
from meshsite.sockets import read_without_log_context, unsent_bytes, write_now
from observability.proxy.asgi import mounted_in, route_of
from observability.proxy.daphne import start as start_proxy_exchange
from observability.proxy.http11 import MeshHTTPFactory
from observability.proxy.http11 import cancel_all as cancel_proxy_answers
from observability.proxy.upstream import close_session as close_upstream_session
from rooms.mesh.node import stop_node
from rooms.mesh.session import SEND_NOW_EXTENSION
from toolkits.registry import all_builtins

if TYPE_CHECKING:
    from agents.host import AgentHost

logger = logging.getLogger(__name__)


class MeshWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol with a bound on what waits in the socket for a client that stopped reading.

    Twisted's transport buffers every write without limit, so one participant that never reads
    would grow the server's memory as fast as others send to it. Past
    MESHSITE_MAX_OUTGOING_BUFFER_BYTES the connection is cut: the application is told at once
    (`websocket.disconnect` with 4413, so the participant leaves as "slow reader" and its senders
    hear of it), a 4413 close frame is queued, and the TCP connection is dropped.

    Messages are framed here and leave once per loop tick (see queue_frame), not through
    autobahn's sendMessage and Twisted's deferred writes."""

    cut_off = False
    muted: bool
    # frames of this loop tick, written together by flush_outgoing
    outgoing: list[bytes] | None = None
    outgoing_bytes = 0
    disconnected = False

    def unsent_bytes(self) -> int:
        return unsent_bytes(self.transport) + self.outgoing_bytes

    def connectionMade(self) -> None:
        super().connectionMade()
        read_without_log_context(self.transport)

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's own dataReceived also formats a debug line (peer, colours) for every read,
        # even with debug logging off. Daphne pings a connection only after ping_interval without
        # traffic: once per read is as good as once per frame.
        self.last_ping = time.time()
        if self.state == self.STATE_OPEN and not self.data and self.current_frame is None and not self.inside_message:
            data = self.deliver_whole_frames(data)
            if not data:
                return
        self._dataReceived(data)

    def deliver_whole_frames(self, data: bytes) -> bytes:
        """Delivers the whole data frames at the start of `data` and returns the rest for autobahn.

        Nearly every frame a participant sends is one masked, unfragmented text frame within the
        size limits: for those, autobahn's general state machine (frame and message callbacks, a
        masker object per frame) cost more than the routing that follows. Anything else (control
        frames, fragments, reserved bits, an unmasked or oversized frame, invalid UTF-8, a frame
        not wholly received yet) is left to autobahn from that frame on, which answers it as
        before: close codes 1002, 1007 and 1009 come from there."""
        position, end = 0, len(data)
        frame_limit, message_limit = self.maxFramePayloadSize, self.maxMessagePayloadSize
        while end - position >= 6 and self.state == self.STATE_OPEN:
            first, second = data[position], data[position + 1]
            if first not in (0x81, 0x82) or not second & 0x80:  # FIN + text/binary, masked
                break
            length, offset = second & 0x7F, position + 2
            if length >= 126:
                size = 2 if length == 126 else 8
                if end - offset < size:
                    break
                length = int.from_bytes(data[offset : offset + size], "big")
                offset += size
            if (frame_limit and length > frame_limit) or (message_limit and length > message_limit):
                break
            if end - offset < 4 + length:
                break
            payload = unmask(data[offset + 4 : offset + 4 + length], data[offset : offset + 4])
            if first == 0x81:
                try:
                    text = payload.decode("utf8")
                except UnicodeDecodeError:
                    break
                message: dict[str, Any] = {"type": "websocket.receive", "text": text}
            else:
                message = {"type": "websocket.receive", "bytes": payload}
            position = offset + 4 + length
            self.to_application(message)
        return data[position:]

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        # What autobahn delivers (fragmented or partial frames): daphne's, without its debug line
        # and clock read per frame (dataReceived reads the clock).
        if isBinary:
            self.to_application({"type": "websocket.receive", "bytes": payload})
        else:
            self.to_application({"type": "websocket.receive", "text": payload.decode("utf8")})

    def to_application(self, message: dict[str, Any]) -> None:
        if not self.muted:
            self.application_queue.put_nowait(message)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.disconnected = True  # what daphne's handle_reply learns from server.connections
        super().onClose(wasClean, code, reason)

    def send_text_now(self, text: str) -> None:
        """A text frame sent without a coroutine: the scope extension SEND_NOW_EXTENSION, which
        the room consumer hands its session (Node.send). Only for an accepted connection."""
        if not self.disconnected and text:
            self.serverSend(text)

    async def send_from_application(self, message: dict[str, Any]) -> None:
        """The application's ASGI `send`. A text frame on an open connection, nearly every message a
        room sends, goes to serverSend here; daphne's Server.handle_reply and the protocol's
        handle_reply (a coroutine, a dictionary lookup hashing the protocol in Python, type checks)
        cost more than framing it. Everything else goes the way daphne sends it."""
        if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN and message.get("bytes") is None:
            self.send_text_now(message.get("text") or "")
            return
        await self.server.handle_reply(self, message)

    def serverSend(self, content: Any, binary: bool = False) -> None:
        if self.cut_off:
            return
        if self.state == self.STATE_CONNECTING:
            self.serverAccept()
        data = content if binary else content.encode("utf8")
        if self.unsent_bytes() + len(data) > LIMITS.max_outgoing_buffer_bytes:
            self.cut_off_slow_reader()
            return
        if self.state == self.STATE_OPEN and self._perMessageCompress is None and not self.send_queue:
            self.queue_frame(frame_header(len(data), binary) + data)
        else:
            self.sendMessage(data, binary)

    def queue_frame(self, frame: bytes) -> None:
        """The first frame of a loop tick leaves at once (a lone answer waits for nothing); the
        frames that follow it in the same tick (a host receiving many calls, a caller many
        answers) are held and leave together, in one send, at the end of the tick."""
        if self.outgoing is None:
            self.outgoing = []
            asyncio.get_running_loop().call_soon(self.flush_outgoing)
            write_now(self.transport, frame)
            return
        self.outgoing.append(frame)
        self.outgoing_bytes += len(frame)

    def flush_outgoing(self) -> None:
        frames = self.outgoing
        if frames is None:
            return
        self.outgoing = None
        self.outgoing_bytes = 0
        if frames:
            write_now(self.transport, frames[0] if len(frames) == 1 else b"".join(frames))

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Every frame autobahn writes itself (close, ping, pong) comes here: it goes after the
        # frames already queued, so a closing notification still precedes its close frame.
        self.flush_outgoing()
        super().sendData(data, sync, chopsize)

    def cut_off_slow_reader(self) -> None:
        self.cut_off = True
        self.outgoing = None  # nothing more for a reader that stopped reading, but the close frame
        self.outgoing_bytes = 0
        logger.warning(
            "cutting off %s: it stopped reading (over %d unsent bytes)", self.client_addr, self.unsent_bytes()
        )
        if hasattr(self, "application_queue") and not self.muted:
            self.application_queue.put_nowait({"type": "websocket.disconnect", "code": int(CloseCode.SLOW_READER)})
            self.muted = True  # onClose must not report the disconnect a second time
        self.sendClose(code=int(CloseCode.SLOW_READER), reason="slow reader: outgoing buffer full")
        self.dropConnection(abort=True)


class ApplicationQueue:
    """What daphne hands a WebSocket's application as `receive`: asyncio.Queue's put_nowait and get
    for its one reader and its one writer, without the bookkeeping (task counts, an Event, putter
    wake-ups) an unbounded queue read by one task never needs, on every frame."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: deque[dict[str, Any]] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> dict[str, Any]:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.items.popleft()


def unmask(payload: bytes, mask: bytes) -> bytes:
    """A client frame's payload XORed with its 4-byte mask, as whole-number arithmetic (C speed)."""
    length = len(payload)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")


def frame_header(length: int, binary: bool) -> bytes:
    """An unmasked, unfragmented WebSocket frame's header (RFC 6455 section 5.2)."""
    first = 0x82 if binary else 0x81
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


class MeshWebSocketFactory(WebSocketFactory):
    """Autobahn's default answer to a protocol failure (such as a frame over the size limit) is to
    drop the TCP connection; clients then see 1006 and no reason. Fail with a close frame instead,
    so an oversized frame closes with 1009 as documented."""

    protocol = MeshWebSocketProtocol

    def setProtocolOptions(self, **options: Any) -> None:
        super().setProtocolOptions(failByDrop=False, **options)


# Daphne builds its factories inside Server.run(); this is the one place to swap them.
daphne.server.WebSocketFactory = MeshWebSocketFactory
daphne.server.HTTPFactory = MeshHTTPFactory


class MeshServer(Server):
    """Daphne, with a graceful stop: on SIGTERM/SIGINT daphne cancels every connection's
    application before the reactor stops; first close every session with 4503 and a reason, tell
    the other nodes, and flush the ledger, while the event loop still runs."""

    agent_host: "AgentHost | None" = None
    agent_host_task: "asyncio.Task[None] | None" = None

    def kill_all_applications(self) -> "defer.Deferred[None]":
        logger.info("stopping: closing sessions, telling the other nodes, flushing the ledger")
        stopped = defer.Deferred.fromFuture(asyncio.get_event_loop().create_task(self.stop_gracefully()))
        stopped.addErrback(lambda failure: logger.error("graceful stop failed: %s", failure.getTraceback()))
        stopped.addBoth(lambda _: super(MeshServer, self).kill_all_applications())
        return stopped

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        """Daphne's, except that an HTTP application reads the request body as it asks for it
        instead of all of it being queued in memory at once (files.streaming), and that a request
        to the metering proxy, when the application mounts it, goes straight to the proxy
        (observability.proxy.daphne: none of the layers in front of it does anything for it)."""
        if scope.get("type") == "websocket" and isinstance(protocol, MeshWebSocketProtocol):
            return self.create_websocket_application(protocol, scope)
        if scope.get("type") == "http" and hasattr(protocol, "content"):
            route = route_of(scope["path"]) if self.proxy_mounted else None
            if route is not None:
                return start_proxy_exchange(self, protocol, scope, route)
            return create_streaming_application(self, protocol, scope)
        return super().create_application(protocol, scope)

    def create_websocket_application(self, protocol: MeshWebSocketProtocol, scope: dict[str, Any]) -> Any:
        """Daphne's create_application, with the protocol's own send_from_application as `send`."""
        assert "application_instance" not in self.connections[protocol]
        input_queue = ApplicationQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        scope.setdefault("extensions", {})[SEND_NOW_EXTENSION] = protocol.send_text_now
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=protocol.send_from_application
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(application_instance)
        return input_queue

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        """Daphne's, except that a streamed response waits while the client is behind (files.streaming)."""
        await super().handle_reply(protocol, message)
        if message.get("type") == "http.response.body" and message.get("more_body"):
            await wait_for_drain(self, protocol)

    @cached_property
    def proxy_mounted(self) -> bool:
        """Whether the application answers the proxy's routes ahead of Django (`meshsite.asgi`),
        so that create_application may hand them to the proxy itself."""
        return mounted_in(self.application)

    async def stop_gracefully(self) -> None:
        if self.agent_host is not None:
            await self.agent_host.stop()  # its agents finish their in-flight asks first
        await stop_node()
        await cancel_proxy_answers()  # what is on its way is recorded before the pool closes
        await close_upstream_session()  # the metering proxy's pooled connections


class Command(BaseCommand):
    help = "Serve Meshsite (HTTP + WebSocket) with daphne."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--agent-host",
            action="store_true",
            help="Also run the agent host in this process (the embedded default does).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        def announce() -> None:
            self.stdout.write(f"Meshsite listening on http://{options['host']}:{options['port']}/")
            self.stdout.flush()
            if options["agent_host"]:
                # The embedded default's composition: the agents app's host in this process.
                from agents.host import AgentHost

                server.agent_host = AgentHost(f"http://127.0.0.1:{options['port']}")
                server.agent_host_task = asyncio.get_event_loop().create_task(server.agent_host.run())
            # Without a broker, background work (Workers) runs in this process: agents/tasks.py
            from agents.tasks import start_in_process

            start_in_process(f"http://127.0.0.1:{options['port']}")

        # Import and compile every built-in toolkit now (about 0.4 s): otherwise the first
        # participant to join waits for it, as its room.ready lists them.
        all_builtins()
        server = MeshServer(
            application=get_default_application(),
            endpoints=build_endpoint_description_strings(host=options["host"], port=options["port"]),
            websocket_max_message_size=settings.MESHSITE_MAX_FRAME_BYTES,
            websocket_max_frame_size=settings.MESHSITE_MAX_FRAME_BYTES,
            ping_interval=settings.MESHSITE_WS_PING_INTERVAL,
            ping_timeout=settings.MESHSITE_WS_PING_TIMEOUT,
            # Daphne would close every socket after 24 hours; Meshsite ends a connection when its
            # token expires instead (refreshable), so the age cap is a setting, off by default.
            websocket_timeout=settings.MESHSITE_WS_MAX_AGE,
            application_close_timeout=10,
            ready_callable=announce,
            verbosity=int(options.get("verbosity", 1)) - 1 if options.get("verbosity", 1) > 1 else 0,
        )
        server.run()
