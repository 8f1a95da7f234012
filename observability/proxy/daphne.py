"""The proxy served straight from daphne by `manage.py serve` (MeshServer.create_application),
when the server's application mounts it (`asgi.mounted_in`), for the requests daphne's channel
reads: those on a connection `http11.ProxyChannel` handed over (see there).

Mounted as an ASGI application, a proxied request still went through the layers in front of it,
none of which does anything for it: the streamed request body (`files.streaming`), the protocol
router, the mount's own router, an input queue with a task watching it for the client leaving, and
daphne's `handle_reply` coroutine for every message sent. Here the request gets one task, running
`asgi.respond`:

- its body is what Twisted already holds (daphne starts the application only once the whole body
  arrived), read at once, no more than one byte past MESHSITE_PROXY_MAX_REQUEST_BYTES;
- `Exchange` stands where daphne expects the application's input queue: daphne puts the (empty)
  body message there, which is ignored, and the disconnect, which cancels the task unless the
  answer is complete, as `asgi.serve` does (the usage of a request cut short is still recorded);
- what the proxy sends goes to daphne's protocol as daphne's own `handle_reply` would hand it on,
  a stream's next chunk waiting while the client is behind (`files.streaming.wait_for_drain`).

Daphne still parses the request, times it out (`http_timeout`), and reaps the task and reports
its exception (`application_checker`), as for any application.
"""

import asyncio
import io
from typing import Any

from django.conf import settings

from files.streaming import wait_for_drain

from .asgi import Message, respond


class Exchange:
    """One proxied request on a daphne connection: the application's input queue as daphne sees
    it, and the application's `send`."""

    def __init__(self, server: Any, protocol: Any) -> None:
        self.server = server
        self.protocol = protocol
        self.task: asyncio.Task[None] | None = None
        self.answered = False  # the last body message has gone to daphne

    def put_nowait(self, message: Message) -> None:
        # The body was read before the task started, so daphne's body message is ignored. Daphne
        # also reports a disconnect once the response finished (`WebRequest.finish`): only one
        # before that is the client leaving.
        if message["type"] == "http.disconnect" and not self.answered and self.task is not None:
            self.task.cancel()

    async def send(self, message: Message) -> None:
        more = message.get("more_body", False)
        if message["type"] == "http.response.body" and not more:
            self.answered = True
        details = self.server.connections.get(self.protocol)
        if details is None or "disconnected" in details:
            return  # what daphne's handle_reply does for a closed connection
        self.protocol.handle_reply(message)
        if more:
            await wait_for_drain(self.server, self.protocol)


def start(server: Any, protocol: Any, scope: dict[str, Any], route: str) -> Exchange | None:
    """Daphne's `create_application` for a proxied request: starts its task and returns what
    daphne keeps as the application's queue (None: the client is already gone)."""
    assert "application_instance" not in server.connections[protocol]
    content = protocol.content
    try:
        body = content.read(settings.MESHSITE_PROXY_MAX_REQUEST_BYTES + 1)
    except ValueError:  # Twisted closed the file: the client went away
        return None
    content.close()  # a large body's temporary file
    protocol.content = io.BytesIO()  # daphne reads it next and queues the empty body message
    if protocol not in server.connections:
        return None
    exchange = Exchange(server, protocol)
    exchange.task = asyncio.get_running_loop().create_task(
        respond(route, scope["method"], scope["headers"], body, exchange.send)
    )
    server.connections[protocol]["application_instance"] = exchange.task
    return exchange
