"""The proxy's request handling, apart from any web framework: an `Incoming` request in, an
`Outgoing` answer out (a whole body, or an async iterator of stream chunks). `views` serves it
through Django's URLs, `asgi` directly under the ASGI server; both behave the same.

What the proxy answers itself is in OpenAI's error shape with an `x-request-id`: 400 (a body that
is not a JSON object), 413 (too large), 401 (no or a bad credential), 403 (a credential of another
project, a role that may not use it), 405, 429 `budget_exceeded`, 502/504 (the upstream is
unreachable or timed out), 503 (no upstream configured). Everything else is the upstream's
answer: status, body and headers (its request id as `x-upstream-request-id`).

Cancellation (the client went away) is the caller's to deliver: the adapter cancels the task
awaiting `handle` (before the answer), or closes the stream's iterator (while streaming); both
leave the usage recorded.
"""

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from django.conf import settings
from meshsite_client.protocol import parse_traceparent
from meshsite_client.tracing import new_span_id

from . import metering
from .auth import bearer
from .errors import ProxyError, bad_request
from .metering import CHAT, EMBEDDINGS, Gate, Metered
from .upstream import request_headers, response_headers, session

ROUTES = {"chat/completions": CHAT, "embeddings": EMBEDDINGS, "models": None}
USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
ERROR_OBJECT = re.compile(rb'"error"\s*:')
EVENT_BOUNDARY = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)")
# An event longer than this without its blank line is passed on as it is (not held back).
MAX_PENDING = 1024 * 1024


def new_request_id() -> str:
    # An id, not a secret: from the process's random generator (seeded from the OS, reseeded in a
    # forked child), not a system call per request as `secrets` makes.
    return f"req_{random.getrandbits(96):024x}"


@dataclass
class Incoming:
    method: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@dataclass
class Outgoing:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncGenerator[bytes, None] | None = None


def error_answer(exc: ProxyError, request_id: str) -> Outgoing:
    headers = {"content-type": "application/json", **exc.headers, "x-request-id": request_id}
    return Outgoing(exc.status, headers, json.dumps(exc.body()).encode())


def _short(incoming: Incoming, header: str, limit: int) -> str:
    value = incoming.headers.get(header, "")
    return value if len(value) <= limit else ""


@dataclass
class Call:
    """One request on its way through."""

    incoming: Incoming
    request_id: str
    endpoint: str | None
    body: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    trace_id: str = ""
    parent_span_id: str = ""
    span_id: str = ""
    traceparent: str = ""  # what the upstream gets: the caller's trace, the proxy's span

    def __post_init__(self) -> None:
        parsed = parse_traceparent(self.incoming.headers.get("traceparent"))
        if parsed is not None:
            self.trace_id, self.parent_span_id, flags = parsed
            self.span_id = new_span_id()
            self.traceparent = f"00-{self.trace_id}-{self.span_id}-{flags}"

    @property
    def model(self) -> str:
        return metering.model_name(self.body)

    def metered(self, gate: Gate, *, stream: bool, status: int, **extra: Any) -> Metered:
        metadata: dict[str, Any] = {
            "source": "proxy",
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "stream": stream,
            "status": status,
            **gate.caller.credential,
        }
        if self.parent_span_id:
            metadata["parent_span_id"] = self.parent_span_id
        if gate.needs_approval:
            metadata["needs_approval"] = True
        assert self.endpoint is not None
        return Metered(
            gate=gate,
            endpoint=self.endpoint,
            body=self.body,
            model=self.model,
            trace_id=self.trace_id,
            span_id=self.span_id,
            thread_id=_short(self.incoming, "x-meshsite-thread-id", 24),
            turn_id=_short(self.incoming, "x-meshsite-turn-id", 64),
            metadata=metadata,
            **extra,
        )

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def too_large() -> ProxyError:
    limit = settings.MESHSITE_PROXY_MAX_REQUEST_BYTES
    return ProxyError(
        413, f"the request body is over {limit} bytes", type="invalid_request_error", code="request_too_large"
    )


def passthrough(upstream: aiohttp.ClientResponse, content: bytes, request_id: str) -> Outgoing:
    headers = response_headers(upstream)
    headers["x-request-id"] = request_id
    return Outgoing(upstream.status, headers, content)


# What a failed exchange with the upstream raises: aiohttp's errors, and its timeouts (asyncio's,
# which are also TimeoutError)
UPSTREAM_ERRORS = (aiohttp.ClientError, TimeoutError)


def upstream_failure(exc: BaseException) -> ProxyError:
    if isinstance(exc, TimeoutError):
        message = f"the upstream did not answer in time ({type(exc).__name__})"
        return ProxyError(504, message, type="upstream_error", code="upstream_timeout")
    message = f"the upstream is unreachable ({type(exc).__name__}: {exc})"
    return ProxyError(502, message, type="upstream_error", code="upstream_unavailable")


async def handle(route: str, incoming: Incoming) -> Outgoing:
    """Answers `incoming` for `route` (a key of ROUTES: the path after `/v1/`)."""
    endpoint = ROUTES[route]
    call = Call(incoming, new_request_id(), endpoint)
    try:
        authorization = incoming.headers.get("authorization", "")
        project = incoming.headers.get("x-meshsite-project", "").strip()
        if endpoint is None:
            if incoming.method != "GET":
                raise ProxyError(405, "use GET /v1/models", type="invalid_request_error", code="method_not_allowed")
            gate = await metering.open_gate(authorization, project, None, None)
            return await models(call, gate)
        if incoming.method != "POST":
            raise ProxyError(405, f"use POST /v1/{route}", type="invalid_request_error", code="method_not_allowed")
        bearer(authorization)  # a missing credential is 401 before anything else
        if len(incoming.body) > settings.MESHSITE_PROXY_MAX_REQUEST_BYTES:
            raise too_large()
        call.body = parse_json(incoming.body)
        gate = await metering.open_gate(authorization, project, endpoint, call.body)
    except ProxyError as exc:
        return error_answer(exc, call.request_id)
    return await forward(call, gate, route)


async def models(call: Call, gate: Gate) -> Outgoing:
    headers = request_headers(call.incoming.headers, gate.upstream, call.traceparent)
    headers.pop("content-type")
    try:
        async with session().get(f"{gate.upstream.url}/models", headers=headers, allow_redirects=False) as upstream:
            content = await upstream.read()
    except UPSTREAM_ERRORS as exc:
        return error_answer(upstream_failure(exc), call.request_id)
    return passthrough(upstream, content, call.request_id)


async def forward(call: Call, gate: Gate, route: str) -> Outgoing:
    body = call.body
    stream = call.endpoint == CHAT and body.get("stream") is True
    options = body.get("stream_options")
    wants_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    if stream and not wants_usage:
        # the usage chunk is how a stream's tokens are known: always ask for it
        options = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
        content = json.dumps({**body, "stream_options": options}).encode()
    else:
        content = call.incoming.body
    url = f"{gate.upstream.url}/{route}"
    try:
        upstream = await send(url, content, request_headers(call.incoming.headers, gate.upstream, call.traceparent))
    except UPSTREAM_ERRORS as exc:
        metering.submit(metering.release, gate)
        return error_answer(upstream_failure(exc), call.request_id)
    except asyncio.CancelledError:
        # the client left before the upstream answered: the prompt may have been processed
        metering.submit(
            metering.record,
            call.metered(gate, stream=stream, status=499, estimate_reason="client_disconnected_before_response"),
        )
        raise
    event_stream = upstream.headers.get("content-type", "").startswith("text/event-stream")
    if upstream.status >= 300 or not event_stream:
        return await complete(call, gate, upstream, stream)
    headers = response_headers(upstream)
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"  # nginx and the like: pass it on as it comes
    headers["x-request-id"] = call.request_id
    return Outgoing(upstream.status, headers, stream=Relay(call, gate, upstream, wants_usage).events())


# A pooled keep-alive connection the upstream closed just as it was reused fails like this,
# before the upstream read the request: such a send is tried once more, on a new connection.
# (aiohttp retries so itself only for idempotent methods; a failure to connect is not retried.)
def _stale(exc: aiohttp.ClientError) -> bool:
    return isinstance(exc, aiohttp.ServerDisconnectedError) or (
        isinstance(exc, aiohttp.ClientOSError) and not isinstance(exc, aiohttp.ClientConnectorError)
    )


async def send(url: str, content: bytes, headers: dict[str, str]) -> aiohttp.ClientResponse:
    """The upstream's answer, its headers read, its body not yet."""
    try:
        return await session().post(url, data=content, headers=headers, allow_redirects=False)
    except aiohttp.ClientError as exc:
        if not _stale(exc):
            raise
        return await session().post(url, data=content, headers=headers, allow_redirects=False)


async def complete(call: Call, gate: Gate, upstream: aiohttp.ClientResponse, stream: bool) -> Outgoing:
    """A whole answer: an error (passed through, the reservation released) or a JSON result."""
    try:
        content = await upstream.read()
    except UPSTREAM_ERRORS as exc:
        metering.submit(
            metering.record,
            call.metered(gate, stream=stream, status=502, estimate_reason="upstream_broken"),
        )
        return error_answer(upstream_failure(exc), call.request_id)
    except asyncio.CancelledError:
        metering.submit(
            metering.record,
            call.metered(gate, stream=stream, status=499, estimate_reason="client_disconnected_before_response"),
        )
        raise
    finally:
        upstream.close()  # after a whole body, its connection is already back in the pool
    if upstream.status >= 300:
        metering.submit(metering.release, gate)
        return passthrough(upstream, content, call.request_id)
    try:
        answer: Any = json.loads(content)
    except ValueError:
        answer = None
    assert call.endpoint is not None
    amounts = metering.usage_amounts(call.endpoint, answer.get("usage") if isinstance(answer, dict) else None)
    metered = call.metered(gate, stream=stream, status=upstream.status)
    if isinstance(answer, dict) and isinstance(answer.get("model"), str) and answer["model"]:
        metered.model = answer["model"][:200]
    if amounts is not None:
        metered.amounts = amounts
    else:
        metered.streamed = metering.completion_text(answer)
        metered.estimate_reason = "no_usage_reported"
    metered.metadata["duration_ms"] = call.elapsed_ms()
    if upstream.headers.get("x-request-id"):
        metered.metadata["upstream_request_id"] = upstream.headers["x-request-id"]
    metering.submit(metering.record, metered)
    return passthrough(upstream, content, call.request_id)


def close_later(loop: asyncio.AbstractEventLoop, upstream: aiohttp.ClientResponse) -> None:
    """Closes an upstream response (its connection, unless the whole body was read and it is back
    in the pool) on its event loop, from that loop or any other thread."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        if running is loop:
            upstream.close()
        else:
            loop.call_soon_threadsafe(upstream.close)
    except RuntimeError:  # the loop is closed (the process is exiting): nothing left to close
        pass


def short_error(error: Any) -> dict[str, str]:
    """An upstream's in-stream error object, as the usage metadata keeps it."""
    error = error if isinstance(error, dict) else {"message": error}
    return {
        key: str(error[key])[:500].replace("\x00", "\ufffd")
        for key in ("message", "type", "code")
        if error.get(key) is not None
    }


class Relay:
    """Passes an upstream event stream on, whole events as they arrive, and meters it: the usage
    chunk's tokens (the chunk itself is passed on only if the client asked for it), or, when the
    stream ends without one, an estimate from what was streamed."""

    def __init__(self, call: Call, gate: Gate, upstream: aiohttp.ClientResponse, wants_usage: bool) -> None:
        self.call = call
        self.gate = gate
        self.upstream = upstream
        self.wants_usage = wants_usage
        self.pending = b""
        self.passed: list[bytes] = []
        self.usage: metering.Amounts | None = None
        self.model = ""
        self.error: Any = None
        self.finished = False
        self.ended = False  # the upstream's `data: [DONE]` was passed on
        self.loop = asyncio.get_running_loop()

    def __del__(self) -> None:
        # A stream whose iterator never started (the client left between the answer's headers
        # and its first chunk) has no `finally` to run: meter it and let go of the upstream here.
        if not getattr(self, "finished", True):
            self.finish("client_disconnected")

    async def events(self) -> AsyncGenerator[bytes, None]:
        outcome = "client_disconnected"
        try:
            try:
                # each piece as it arrives: iter_any waits for nothing more than is there
                async for data in self.upstream.content.iter_any():
                    out = self.feed(data)
                    if out:
                        yield out
                if self.pending:  # a last event without its blank line
                    out, self.pending = self.inspect(self.pending), b""
                    if out:
                        yield out
                outcome = "completed"
            except UPSTREAM_ERRORS as exc:
                outcome = "upstream_broken"
                out = self.feed(self.unread())
                if out:
                    yield out
                # end the stream with an error the client's SDK raises, not silently cut short
                error = {
                    "message": f"the upstream stream broke ({type(exc).__name__})",
                    "type": "upstream_error",
                    "code": "upstream_stream_broken",
                    "param": None,
                }
                yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
        finally:
            self.finish(outcome)

    def unread(self) -> bytes:
        """What the upstream sent before its connection broke and was not read yet. aiohttp raises
        the error ahead of data still in its buffer (`StreamReader.readany`), so an upstream that
        sends its last events and dies at once would lose them; its private `_read_nowait` is the
        one way to them."""
        try:
            return self.upstream.content._read_nowait(-1)
        except Exception:  # another aiohttp's internals, or a timed-out read: nothing to salvage
            return b""

    def feed(self, data: bytes) -> bytes:
        buffer = self.pending + data if self.pending else data
        end = max(buffer.rfind(b"\n\n") + 2, buffer.rfind(b"\r\n\r\n") + 4)
        if end < 4 and len(buffer) < MAX_PENDING:  # no event boundary yet
            self.pending = buffer
            return b""
        if end < 4:
            end = len(buffer)
        self.pending = buffer[end:]
        return self.inspect(buffer[:end])

    def inspect(self, blob: bytes) -> bytes:
        """Whole events → what the client gets: all of them, less a usage-only chunk it did not
        ask for. Only events that carry a usage or an error object are parsed."""
        if blob[-32:].rstrip().endswith(b"[DONE]"):  # only the end marker ends so (JSON ends in "}")
            self.ended = True
        if USAGE_OBJECT.search(blob) is None and ERROR_OBJECT.search(blob) is None:
            self.passed.append(blob)
            return blob
        kept: list[bytes] = []
        for event in EVENT_BOUNDARY.split(blob):
            if not event:
                continue
            chunk = metering.event_data(event)
            if isinstance(chunk, dict):
                assert self.call.endpoint is not None
                amounts = metering.usage_amounts(self.call.endpoint, chunk.get("usage"))
                if amounts is not None:
                    self.usage = amounts
                    model = chunk.get("model")
                    self.model = model[:200] if isinstance(model, str) else ""
                    if not self.wants_usage and not chunk.get("choices"):
                        continue
                if "error" in chunk:
                    self.error = chunk["error"]
            kept.append(event)
        out = b"".join(kept)
        self.passed.append(out)
        return out

    def finish(self, outcome: str) -> None:
        if self.finished:
            return
        self.finished = True
        if outcome == "client_disconnected" and self.ended:
            # it left after the stream's end marker, before the upstream's connection said so
            outcome = "completed"
        close_later(self.loop, self.upstream)
        metered = self.call.metered(self.gate, stream=True, status=self.upstream.status)
        metered.metadata["outcome"] = outcome
        metered.metadata["duration_ms"] = self.call.elapsed_ms()
        if self.upstream.headers.get("x-request-id"):
            metered.metadata["upstream_request_id"] = self.upstream.headers["x-request-id"]
        if self.error is not None:
            metered.metadata["upstream_error"] = short_error(self.error)
        if self.usage is not None:
            metered.amounts = self.usage
            if self.model:
                metered.model = self.model
        else:
            metered.streamed = self.passed
            metered.estimate_reason = outcome if outcome != "completed" else "no_usage_reported"
        metering.submit(metering.record, metered)
