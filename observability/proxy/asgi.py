"""The proxy served straight from the ASGI server, ahead of Django's middleware.

Through Django's URLs (`views`), every request also pays for Django's request handling: a thread
per request for the sync middleware (WhiteNoise) and the request signals, several hand-offs
between that thread and the event loop. The proxy needs none of it (it authenticates with its own
credentials and does its database work on its own threads), so `meshsite.asgi` mounts it in front:

    application = ProtocolTypeRouter({"http": mount(django_asgi_app), "websocket": ...})

`mount(app)` answers `/v1/chat/completions`, `/v1/embeddings` and `/v1/models` itself and hands
everything else to `app`. `meshsite.asgi.application_proxy_through_django` serves it through
Django's URLs instead (to measure the difference, and so that both stay tested). `manage.py serve`,
seeing the proxy mounted (`mounted_in`), hands those routes to `respond` itself, past the ASGI
layers (`observability.proxy.daphne`); `mount` serves them under any other ASGI server.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
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


class Mounted:
    """`app`, with the proxy's routes answered ahead of it (what `mount` returns)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = route_of(scope["path"])
            if route is not None:
                await serve(route, scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount(app: Callable[..., Awaitable[None]]) -> ASGIApp:
    """`app`, with the proxy's routes answered ahead of it."""
    return Mounted(app)


def mounted_in(application: Any) -> bool:
    """Whether `application` (a server's ASGI application) answers the proxy's routes itself, ahead
    of Django: `mount(…)`, or a ProtocolTypeRouter whose HTTP application is. `manage.py serve`
    then hands those routes straight to the proxy (`observability.proxy.daphne`)."""
    mapping = getattr(application, "application_mapping", None)
    if isinstance(mapping, dict):
        application = mapping.get("http")
    return isinstance(application, Mounted)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _start(send: Send, outgoing: Outgoing) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in outgoing.headers.items()]
    if outgoing.stream is None:
        headers.append((b"content-length", str(len(outgoing.body)).encode()))
    await send({"type": "http.response.start", "status": outgoing.status, "headers": headers})


def header_map(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI's header pairs → lower-case names to values, a repeated header's values joined by ","."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


async def respond(route: str, method: str, raw_headers: Iterable[tuple[bytes, bytes]], body: bytes, send: Send) -> None:
    """Answers one request whose whole body is read (at most MESHSITE_PROXY_MAX_REQUEST_BYTES of
    it: a longer one is 413). The client leaving is the caller's to deliver, by cancelling this:
    before the answer, `handle` records what it cost; while streaming, closing the stream does."""
    if len(body) > settings.MESHSITE_PROXY_MAX_REQUEST_BYTES:
        outgoing = error_answer(too_large(), new_request_id())
    else:
        outgoing = await handle(route, Incoming(method, header_map(raw_headers), body))
    await _start(send, outgoing)
    if outgoing.stream is None:
        await send({"type": "http.response.body", "body": outgoing.body})
        return
    async with contextlib.aclosing(outgoing.stream) as stream:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def serve(route: str, scope: Scope, receive: Receive, send: Send) -> None:
    """`respond` as an ASGI application: the body read from `receive` (no more than one byte past
    the limit kept), then answered while watching `receive` for the client leaving."""
    limit = settings.MESHSITE_PROXY_MAX_REQUEST_BYTES
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if size <= limit:
            parts.append(chunk[: limit + 1 - size])
        size += len(chunk)
        if not message.get("more_body", False):
            break
    disconnect = asyncio.ensure_future(_disconnected(receive))
    try:
        answering = asyncio.ensure_future(respond(route, scope["method"], scope["headers"], b"".join(parts), send))
        await asyncio.wait({answering, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        if not answering.done():  # the client left first: cancelling records what it cost
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answering
            return
        answering.result()
    finally:
        disconnect.cancel()
