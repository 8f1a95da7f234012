"""The metering proxy's requests read and answered on `manage.py serve`'s connections without
Twisted's HTTP machinery, when the application mounts the proxy (`asgi.mounted_in`).

Per proxied request, twisted.web and daphne built a Request, parsed its headers line by line,
ran daphne's `process` as inlineCallbacks, built an ASGI scope, formatted an access-log line,
and wrote the answer through Twisted's deferred writes: together more CPU than the proxy's own
work (bench/proxy.py; docs/billing.md, "Proxy overhead"). A `ProxyChannel` reads each request on
the connection itself and answers it with `asgi.respond` if it is a plain HTTP/1.1 request to one
of the proxy's routes:

- request line `GET|POST /v1/<route> HTTP/1.1`, no query string;
- header names are tokens, no control characters but tabs in the head, no folded lines;
- one `Content-Length` of digits (or none: no body), no more than MESHSITE_PROXY_MAX_REQUEST_BYTES;
- no `Transfer-Encoding`, `Expect` or `Upgrade`; `Connection` only keep-alive or close.

The first request on a connection that is anything else (another path, a chunked upload, an
HTTP/1.0 client, a malformed head) hands the connection, from that request's first byte on, to
daphne's own channel for good, which answers it as for any application: Django, the proxy's own
413 or Twisted's 400. Only one parser reads any one request, so the two never disagree on where
a request ends.

Answers are written at once (`meshsite.sockets.write_now`), a whole body with its head in one
send, a stream in HTTP/1.1 chunks, each next chunk waiting while the client is behind. A client
that leaves cancels the answer, as `asgi.serve` does: its usage is still recorded.
"""

import asyncio
import logging
import re
import time
import weakref
from dataclasses import dataclass
from email.utils import formatdate
from functools import cache
from http import HTTPStatus
from typing import Any

from daphne.http_protocol import HTTPFactory
from django.conf import settings
from twisted.internet.protocol import Protocol

from files.streaming import drain
from meshsite.sockets import is_plain_tcp, read_without_log_context, write_now

from .asgi import Message, respond, route_of

logger = logging.getLogger(__name__)

# A head (request line and headers) longer than this is handed to Twisted, which allows lines up
# to 16 kB and 500 headers.
MAX_HEAD_BYTES = 16 * 1024
METHODS = {b"GET": "GET", b"POST": "POST"}
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# control characters but tab, and a CR or LF that is not part of a CRLF
UNSAFE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
# headers this channel does not handle: the request goes to Twisted
NOT_HERE = {b"transfer-encoding", b"expect", b"upgrade"}


class HandOver(Exception):
    """The request is not one this channel serves: daphne's channel takes the connection."""


@dataclass(slots=True)
class Head:
    method: str
    route: str
    headers: list[tuple[bytes, bytes]]  # lower-case names
    length: int  # of the body
    size: int  # of the head, its blank line included
    close: bool  # the client asked to close the connection after the answer


def read_head(buffer: bytes) -> Head | None:
    """The head at the start of `buffer`; None while it is incomplete; HandOver if it is not a
    request this channel serves."""
    end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
    if end < 0:
        if len(buffer) >= MAX_HEAD_BYTES + 4:
            raise HandOver
        return None
    head = buffer[:end]
    if UNSAFE.search(head):
        raise HandOver
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or parts[0] not in METHODS:
        raise HandOver
    route = route_of(parts[1].decode("latin-1"))
    if route is None:
        raise HandOver
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    close = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name):  # also a folded line, which starts with a space
            raise HandOver
        name, value = name.lower(), value.strip(b" \t")
        if name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 15:
                raise HandOver
            length = int(value)
        elif name == b"connection":
            options = {option.strip().lower() for option in value.split(b",")}
            if options - {b"keep-alive", b"close", b""}:
                raise HandOver
            close = b"close" in options
        elif name in NOT_HERE:
            raise HandOver
        headers.append((name, value))
    if length is not None and length > settings.MESHSITE_PROXY_MAX_REQUEST_BYTES:
        raise HandOver  # Twisted's path answers it 413 without holding the body in memory
    return Head(METHODS[parts[0]], route, headers, length or 0, end + 4, close)


_date: tuple[int, bytes] = (0, b"")


def date_header() -> bytes:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True).encode())
    return _date[1]


@cache
def status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n".encode()


class ProxyChannel(Protocol):
    """One connection of `manage.py serve`'s, while its requests are the proxy's (see above)."""

    # every open channel, for the server's graceful stop (`cancel_all`)
    live: "weakref.WeakSet[ProxyChannel]" = weakref.WeakSet()

    transport: Any

    def __init__(self, factory: Any, addr: Any) -> None:
        self.factory = factory
        self.addr = addr
        self.buffer = b""
        self.head: Head | None = None
        self.task: asyncio.Task[None] | None = None
        self.pending: Message | None = None  # the answer's http.response.start, sent with its first body
        self.chunked = False
        self.answered = False  # the answer's last body was written
        self.close_after = False
        self.gone = False
        self.paused = False  # reading stopped while an answer is on its way (see dataReceived)
        self.last_read = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None

    def connectionMade(self) -> None:
        if not is_plain_tcp(self.transport):
            self.hand_over()  # a TLS or wrapped connection: Twisted's channel handles those
            return
        self.transport.setTcpNoDelay(True)  # a stream's chunks leave as they are written
        read_without_log_context(self.transport)
        self.live.add(self)
        self.last_read = time.monotonic()
        self.watch_idle()

    def dataReceived(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        self.buffer = self.buffer + data if self.buffer else data
        if self.task is None:
            self.next_request()
        elif len(self.buffer) > MAX_HEAD_BYTES + settings.MESHSITE_PROXY_MAX_REQUEST_BYTES and not self.paused:
            # a client sending request after request without reading the answers: stop reading
            # until this answer is done (as Twisted's channel does), so the buffer stays bounded
            self.paused = True
            self.transport.pauseProducing()

    def next_request(self) -> None:
        if self.head is None:
            try:
                self.head = read_head(self.buffer)
            except HandOver:
                self.hand_over()
                return
            if self.head is None:
                return
        head = self.head
        end = head.size + head.length
        if len(self.buffer) < end:
            return  # the rest of the body is on its way
        body, self.buffer, self.head = self.buffer[head.size : end], self.buffer[end:], None
        self.pending, self.chunked, self.answered, self.close_after = None, False, False, head.close
        self.task = asyncio.get_running_loop().create_task(
            respond(head.route, head.method, head.headers, body, self.send)
        )
        self.task.add_done_callback(self.request_done)

    async def send(self, message: Message) -> None:
        """The answer's ASGI `send` (as `asgi.respond` uses it)."""
        if message["type"] == "http.response.start":
            self.pending = message
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        out = b""
        if self.pending is not None:
            out, self.pending = self.response_head(self.pending, chunked=more), None
            self.chunked = more
        if self.chunked:
            if body:
                out += b"%x\r\n%b\r\n" % (len(body), body)
            if not more:
                out += b"0\r\n\r\n"
        else:
            out += body
        if not more:
            self.answered = True
        if self.gone or not out:
            return
        write_now(self.transport, out)
        if more:
            await drain(self.transport, lambda: self.gone)

    def response_head(self, start: Message, chunked: bool) -> bytes:
        status = int(start["status"])
        lines = [status_line(status)]
        lines.extend(b"%b: %b\r\n" % (name, value) for name, value in start.get("headers", ()))
        lines.append(b"date: %b\r\n" % date_header())
        if chunked:
            lines.append(b"transfer-encoding: chunked\r\n")
        if self.close_after:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def request_done(self, task: "asyncio.Task[None]") -> None:
        self.task = None
        if self.gone:
            return
        if self.paused:
            self.paused = False
            self.transport.resumeProducing()
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            logger.error("metering proxy: the request failed", exc_info=failure)
            if not self.chunked and not self.answered:  # nothing of the answer has gone yet
                self.close_after, self.answered = True, True
                start = {"status": 500, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"21")]}
                write_now(self.transport, self.response_head(start, chunked=False) + b"Internal Server Error")
        if task.cancelled() or not self.answered:
            # stopped half way (the server stopping, a failure mid-stream): the client must not
            # take what it got for a whole answer
            self.transport.abortConnection()
            return
        if self.close_after:
            self.transport.loseConnection()
        elif self.buffer:
            self.next_request()  # a request the client sent before this answer was complete

    def connectionLost(self, reason: Any = None) -> None:
        self.gone = True
        self.live.discard(self)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.task is not None and not self.answered:
            self.task.cancel()  # the client left: the answer's cancellation records its usage

    def hand_over(self) -> None:
        """Daphne's channel takes the connection for good, from the start of the buffered request."""
        self.live.discard(self)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        channel = self.factory.daphne_channel(self.addr)
        self.transport.protocol = channel  # Twisted delivers the connection's reads to it from now on
        channel.makeConnection(self.transport)
        data, self.buffer = self.buffer, b""
        if data:
            channel.dataReceived(data)

    def watch_idle(self) -> None:
        """Closes a connection that has sent nothing for the channel's `timeOut` (as Twisted's
        channel does) while no answer is on its way."""
        timeout = getattr(self.factory, "timeOut", None)
        if not timeout or self.gone:
            return
        idle = time.monotonic() - self.last_read
        if idle >= timeout and self.task is None:
            self.transport.loseConnection()
            return
        self.idle_timer = asyncio.get_running_loop().call_later(max(1.0, timeout - idle), self.watch_idle)


async def cancel_all() -> None:
    """Cancels every answer on its way (the server's graceful stop) and waits for them: a stream
    cut so is still recorded."""
    tasks = [channel.task for channel in list(ProxyChannel.live) if channel.task is not None]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=10)


class MeshHTTPFactory(HTTPFactory):
    """Daphne's HTTPFactory, making a ProxyChannel for each new connection when the server's
    application mounts the proxy (`manage.py serve` installs it as daphne.server.HTTPFactory)."""

    def buildProtocol(self, addr: Any) -> Any:
        if getattr(self.server, "proxy_mounted", False):
            return ProxyChannel(self, addr)
        return self.daphne_channel(addr)

    def daphne_channel(self, addr: Any) -> Any:
        return super().buildProtocol(addr)
