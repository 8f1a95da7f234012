"""Runs one web node: daphne serving Studio, admin, REST and the room WebSocket.

Unlike a bare `daphne meshsite.asgi:application`, this applies Meshsite's WebSocket limits
(frame size, pings, connection age) and flushes the ledger on a graceful stop.
"""

import asyncio
import logging
import os
from typing import Any

import daphne.server
from channels.routing import get_default_application
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from twisted.internet import defer

from agents.host import AgentHost
from rooms.mesh.node import stop_node

logger = logging.getLogger(__name__)


class MeshWebSocketFactory(WebSocketFactory):
    """Autobahn's default answer to a protocol failure (such as a frame over the size limit) is to
    drop the TCP connection; clients then see 1006 and no reason. Fail with a close frame instead,
    so an oversized frame closes with 1009 as documented."""

    def setProtocolOptions(self, **options: Any) -> None:
        super().setProtocolOptions(failByDrop=False, **options)


# Daphne builds its factory inside Server.run(); this is the one place to swap it.
daphne.server.WebSocketFactory = MeshWebSocketFactory


class MeshServer(Server):
    """Daphne, with a graceful stop: on SIGTERM/SIGINT daphne cancels every connection's
    application before the reactor stops; first close every session with 4503 and a reason, tell
    the other nodes, and flush the ledger, while the event loop still runs."""

    agent_host: AgentHost | None = None
    agent_host_task: "asyncio.Task[None] | None" = None

    def kill_all_applications(self) -> "defer.Deferred[None]":
        logger.info("stopping: closing sessions, telling the other nodes, flushing the ledger")
        stopped = defer.Deferred.fromFuture(asyncio.get_event_loop().create_task(self.stop_gracefully()))
        stopped.addErrback(lambda failure: logger.error("graceful stop failed: %s", failure.getTraceback()))
        stopped.addBoth(lambda _: super(MeshServer, self).kill_all_applications())
        return stopped

    async def stop_gracefully(self) -> None:
        if self.agent_host is not None:
            await self.agent_host.stop()  # its agents finish their in-flight asks first
        await stop_node()


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
                server.agent_host = AgentHost(f"http://127.0.0.1:{options['port']}")
                server.agent_host_task = asyncio.get_event_loop().create_task(server.agent_host.run())

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
