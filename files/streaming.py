"""Large HTTP bodies through daphne without holding them in memory, both ways.

Uploads: the request body is handed to the application chunk by chunk, as it asks for it.

Twisted receives a request's whole body before daphne starts the application (into a temporary
file on disk past 100 kB). Daphne then reads that file to the end in one go and puts every chunk
on the application's input queue at once: a 200 MB upload sat in the web process's memory as
200 MB of queued chunks (measured: docs/storage.md). Here the application's `receive` reads the
next chunk from Twisted's file only when the application asks for it, so memory stays flat and
an application that stops reading (an upload over the size limit) never pulls in the rest.

Downloads: daphne writes every response chunk to Twisted's transport, which buffers without
limit; an application streaming a large file to a slow client would pile it all up in memory.
`wait_for_drain` holds the application's next `send` until the socket has taken what is queued.

Form bodies: Twisted parses a POST's `Content-Type` with the `email` package and, for a form
(urlencoded or multipart), its whole body into `request.args`, reading a large upload's temporary
file into memory to do it. Daphne never looks at `request.args` (the application parses its own
body), so `WebRequest` here turns that off: it cost every POST with a body (a metering proxy
request included) about 0.15 ms of CPU, and a multipart upload its whole size in memory.

Used by `manage.py serve` (rooms/management/commands/serve.py, MeshServer).
"""

import asyncio
import io
from collections.abc import Callable
from functools import partial
from typing import Any

import daphne.http_protocol

from meshsite.sockets import unsent_bytes

BODY_CHUNK_BYTES = 256 * 1024
# Response bytes a connection may have queued in Twisted before the application's next send waits.
MAX_UNSENT_RESPONSE_BYTES = 1024 * 1024
DRAIN_POLL_SECONDS = 0.005

Message = dict[str, Any]


class WebRequest(daphne.http_protocol.WebRequest):
    """Daphne's request, without Twisted's parsing of form bodies into `args` (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "parsePOSTFormSubmission": False})


# Daphne's HTTPFactory makes each connection's requests with this module global.
daphne.http_protocol.WebRequest = WebRequest


class StreamedBody:
    def __init__(self, source: Any, queue: "asyncio.Queue[Message]", chunk_bytes: int = BODY_CHUNK_BYTES) -> None:
        self.source = source
        self.queue = queue
        self.chunk_bytes = chunk_bytes
        self.body_done = False
        self.placeholder_dropped = False

    async def receive(self) -> Message:
        if not self.body_done:
            try:
                chunk = self.source.read(self.chunk_bytes)
            except ValueError:  # Twisted closed the file: the client went away
                self.body_done = True
                return {"type": "http.disconnect"}
            more = len(chunk) == self.chunk_bytes
            if not more:
                self.body_done = True
                self.source.close()
            return {"type": "http.request", "body": chunk, "more_body": more}
        message = await self.queue.get()
        if not self.placeholder_dropped and message.get("type") == "http.request":
            # daphne's own (now empty) body message: the body was delivered above
            self.placeholder_dropped = True
            message = await self.queue.get()
        return message


def create_streaming_application(server: Any, protocol: Any, scope: Message) -> "asyncio.Queue[Message] | None":
    """daphne.server.Server.create_application, with the HTTP request body streamed. Daphne reads
    `protocol.content` right after this returns: it gets an empty file, and the real one is read
    by the application through StreamedBody."""
    assert "application_instance" not in server.connections[protocol]
    input_queue: asyncio.Queue[Message] = asyncio.Queue()
    body = StreamedBody(protocol.content, input_queue)
    protocol.content = io.BytesIO()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = server.application(
        scope=scope, receive=body.receive, send=partial(server.handle_reply, protocol)
    )
    if protocol not in server.connections:
        return None
    server.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance, loop=asyncio.get_event_loop()
    )
    return input_queue


async def drain(transport: Any, gone: Callable[[], bool]) -> None:
    """Returns once `transport` has at most MAX_UNSENT_RESPONSE_BYTES queued, or `gone()`."""
    while unsent_bytes(transport) > MAX_UNSENT_RESPONSE_BYTES and not gone():
        await asyncio.sleep(DRAIN_POLL_SECONDS)


async def wait_for_drain(server: Any, protocol: Any) -> None:
    """`drain` for a daphne HTTP request's connection, gone once daphne says it disconnected."""

    def gone() -> bool:
        connection = server.connections.get(protocol)
        return connection is None or "disconnected" in connection

    await drain(getattr(getattr(protocol, "channel", None), "transport", None), gone)
