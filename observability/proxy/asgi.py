"""The proxy served straight from the ASGI server, ahead of Django's middleware.

Through Django's URLs (`views`), every request also pays for Django's request handling: a thread
per request for the sync middleware (WhiteNoise) and the request signals, several hand-offs
between that thread and the event loop. The proxy needs none of it (it authenticates with its own
credentials and does its database work on its own threads), so `meshsite.asgi` mounts it in front:

    application = ProtocolTypeRouter({"http": mount(django_asgi_app), "websocket": ...})

`mount(app)` answers `/v1/chat/completions`, `/v1/embeddings` and `/v1/models` itself and hands
everything else to `app`. `meshsite.asgi.application_proxy_through_django` serves it through
Django's URLs instead (to measure the difference, and so that both stay tested).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from .core import ROUTES, Incoming, Outgoing, error_answer, handle, new_request_id, too_large

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/v1/"


def route_of(path: str) -> str | None:
    if not path.startswith(PREFIX):
        return None
    route = path[len(PREFIX) :].rstrip("/")
    return route if route in ROUTES else None


def mount(app: Callable[..., Awaitable[None]]) -> ASGIApp:
    """`app`, with the proxy's routes answered ahead of it."""

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = route_of(scope["path"])
            if route is not None:
                await serve(route, scope, receive, send)
                return
        await app(scope, receive, send)

    return router


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _start(send: Send, outgoing: Outgoing) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in outgoing.headers.items()]
    if outgoing.stream is None:
        headers.append((b"content-length", str(len(outgoing.body)).encode()))
    await send({"type": "http.response.start", "status": outgoing.status, "headers": headers})


async def _pump(stream: AsyncGenerator[bytes, None], send: Send) -> None:
    async for chunk in stream:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def serve(route: str, scope: Scope, receive: Receive, send: Send) -> None:
    limit = settings.MESHSITE_PROXY_MAX_REQUEST_BYTES
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    if size > limit:
        outgoing = error_answer(too_large(), new_request_id())
        await _start(send, outgoing)
        await send({"type": "http.response.body", "body": outgoing.body})
        return
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    incoming = Incoming(scope["method"], headers, b"".join(parts))

    disconnect = asyncio.ensure_future(_disconnected(receive))
    try:
        answering = asyncio.ensure_future(handle(route, incoming))
        await asyncio.wait({answering, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        if not answering.done():  # the client left first: cancelling records what it cost
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answering
            return
        outgoing = answering.result()
        await _start(send, outgoing)
        if outgoing.stream is None:
            await send({"type": "http.response.body", "body": outgoing.body})
            return
        async with contextlib.aclosing(outgoing.stream) as stream:
            pumping = asyncio.ensure_future(_pump(stream, send))
            await asyncio.wait({pumping, disconnect}, return_when=asyncio.FIRST_COMPLETED)
            if not pumping.done():  # the client left mid-stream
                pumping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pumping
            else:
                pumping.result()
    finally:
        disconnect.cancel()
