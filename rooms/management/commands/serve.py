"""Runs one web node: daphne serving Studio, admin, REST and the room WebSocket.

Unlike a bare `daphne meshsite.asgi:application`, this applies Meshsite's WebSocket limits
(frame size, pings, connection age) and flushes the ledger on a graceful stop.
"""

import asyncio
import logging
import os
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
from observability.proxy.upstream import close_session as close_upstream_session
from rooms.mesh.node import stop_node

if TYPE_CHECKING:
    from agents.host import AgentHost

logger = logging.getLogger(__name__)


class MeshWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol with a bound on what waits in the socket for a client that stopped reading.

    Twisted's transport buffers every write without limit, so one participant that never reads
    would grow the server's memory as fast as others send to it. Past
    MESHSITE_MAX_OUTGOING_BUFFER_BYTES the connection is cut: the application is told at once
    (`websocket.disconnect` with 4413, so the participant leaves as "slow reader" and its senders
    hear of it), a 4413 close frame is queued, and the TCP connection is dropped."""

    cut_off = False
    muted: bool

    def unsent_bytes(self) -> int:
        transport = self.transport
        # twisted.internet.abstract.FileDescriptor keeps what the kernel did not take yet here
        buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
        return int(buffered + getattr(transport, "_tempDataLen", 0))

    def serverSend(self, content: Any, binary: bool = False) -> None:
        if self.cut_off:
            return
        if self.state == self.STATE_CONNECTING:
            self.serverAccept()
        data = content if binary else content.encode("utf8")
        if self.unsent_bytes() + len(data) > settings.MESHSITE_MAX_OUTGOING_BUFFER_BYTES:
            self.cut_off_slow_reader()
            return
        self.sendMessage(data, binary)

    def cut_off_slow_reader(self) -> None:
        self.cut_off = True
        logger.warning(
            "cutting off %s: it stopped reading (over %d unsent bytes)", self.client_addr, self.unsent_bytes()
        )
        if hasattr(self, "application_queue") and not self.muted:
            self.application_queue.put_nowait({"type": "websocket.disconnect", "code": int(CloseCode.SLOW_READER)})
            self.muted = True  # onClose must not report the disconnect a second time
        self.sendClose(code=int(CloseCode.SLOW_READER), reason="slow reader: outgoing buffer full")
        self.dropConnection(abort=True)


class MeshWebSocketFactory(WebSocketFactory):
    """Autobahn's default answer to a protocol failure (such as a frame over the size limit) is to
    drop the TCP connection; clients then see 1006 and no reason. Fail with a close frame instead,
    so an oversized frame closes with 1009 as documented."""

    protocol = MeshWebSocketProtocol

    def setProtocolOptions(self, **options: Any) -> None:
        super().setProtocolOptions(failByDrop=False, **options)


# Daphne builds its factory inside Server.run(); this is the one place to swap it.
daphne.server.WebSocketFactory = MeshWebSocketFactory


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
        instead of all of it being queued in memory at once (files.streaming)."""
        if scope.get("type") == "http" and hasattr(protocol, "content"):
            return create_streaming_application(self, protocol, scope)
        return super().create_application(protocol, scope)

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        """Daphne's, except that a streamed response waits while the client is behind (files.streaming)."""
        await super().handle_reply(protocol, message)
        if message.get("type") == "http.response.body" and message.get("more_body"):
            await wait_for_drain(self, protocol)

    async def stop_gracefully(self) -> None:
        if self.agent_host is not None:
            await self.agent_host.stop()  # its agents finish their in-flight asks first
        await stop_node()
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
