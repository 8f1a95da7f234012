"""A local stand-in for the OpenAI Chat Completions API, for tests.

`FakeOpenAI` is an HTTP server on 127.0.0.1 (a free port, its own threads) that speaks the real
wire format at `POST /v1/chat/completions`: a JSON `chat.completion` when the request has no
`"stream": true`, else Server-Sent Events, `data: {chunk}\\n\\n` … `data: [DONE]\\n\\n`, with the
role chunk, content deltas, `tool_calls` deltas (the id, type and name on a call's first delta,
its arguments split over several), the finish chunk and, when the request asks with
`stream_options.include_usage`, the final usage chunk (`choices: []`). Errors are the real
shape: `{"error": {"message", "type", "param", "code"}}` with their status and headers.

Tests script it: each chat request takes the next scripted item off a queue.

    def test_it(fake_openai):
        fake_openai.reply("Hello there")                              # streamed text
        fake_openai.reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})])
        fake_openai.error(429, "Rate limit reached", retry_after=0.01)
        fake_openai.reply("partial answer", drop_after=3)             # the connection dies mid-way
        ...
        assert fake_openai.requests[0].messages[-1]["content"] == "hi"

Point a client at `fake_openai.base_url` (`http://127.0.0.1:<port>/v1`), or give a server process
`fake_openai.env()`. A request with nothing left in the script gets a 500 whose message says so.

Like the real API, it answers 400 to a request that is malformed in ways a client bug would
cause: no model, no messages, a `tool` message not answering a preceding assistant tool call, an
assistant `tool_calls` message whose calls are not all answered (turn off with `validate=False`).

Every request is recorded (`requests`, `RecordedRequest`): path, headers, the parsed body, and
`time.perf_counter()` readings of when it arrived and when its first chunk was written, for
overhead measurements. `hold_after` + `hold` pause a stream until a test releases it (to
interrupt a turn mid-stream); `RecordedRequest.disconnected` tells whether the client went away
before the end.

Audio (`tests/support/fake_openai_audio.py`): `POST /v1/audio/transcriptions` decodes the uploaded
WAV (recorded in `audio_received`) and answers the next transcript queued with `transcribe(...)`;
`POST /v1/audio/speech` with `response_format=pcm` streams a tone as 24 kHz PCM,
`speech_seconds_per_char` per character of input.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "ErrorReply",
    "FakeOpenAI",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "fake_openai",
]

DEFAULT_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}
DEFAULT_ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded", 404: "model_not_found"}


@dataclass
class ToolCall:
    """One tool call in a scripted reply; `arguments` may be a dict (sent as JSON) or any text,
    invalid JSON included."""

    name: str
    arguments: str | Mapping[str, Any] = ""
    id: str | None = None

    @property
    def arguments_text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """A scripted successful answer, and how to deliver it.

    Content: `text` (split into word-sized deltas, or exactly `text_chunks`), `tool_calls`
    (each call's arguments split into `argument_chunks` pieces; `interleave=True` alternates the
    parallel calls' deltas instead of sending one call after the other), `finish_reason`
    (default `tool_calls` when there are calls, else `stop`), `usage` (`(prompt, completion)`,
    default estimated from the request) with `cached_tokens` and `reasoning_tokens`.

    Delivery: `delay` seconds before the response starts, `chunk_delay` between chunks;
    `drop_after=N` kills the connection after N data chunks (an incomplete chunked body, as a
    broken network or a crashed upstream leaves it); `end_after=N` ends the body cleanly after N
    chunks without the rest or `[DONE]`; `error_event_after=N` sends an in-stream
    `data: {"error": …}` event (`error_event`) after N chunks and ends; `hold_after=N` waits
    after N chunks until `hold` is set (the fake's `release()` sets its default event).

    `raw_chunks`, when given, are streamed exactly as they are instead (then `[DONE]`): for the
    quirks of other OpenAI-compatible servers. A dict is sent as JSON, a str as it is.
    """

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    text_chunks: Sequence[str] | None = None
    argument_chunks: int = 3
    interleave: bool = False
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    model: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    drop_after: int | None = None
    end_after: int | None = None
    error_event_after: int | None = None
    error_event: Mapping[str, Any] | None = None
    hold_after: int | None = None
    hold: threading.Event | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_chunks: Sequence[Mapping[str, Any] | str] | None = None


@dataclass
class ErrorReply:
    """A scripted error response: `status` with the real error body. `retry_after` (seconds) sets
    the `retry-after` header, `retry_after_ms` the `retry-after-ms` one."""

    status: int
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type or DEFAULT_ERROR_TYPES.get(self.status, "api_error"),
                "param": self.param,
                "code": self.code if self.code is not None else DEFAULT_ERROR_CODES.get(self.status),
            }
        }


Scripted = Reply | ErrorReply


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    scripted: Scripted | None = None
    status: int | None = None
    first_chunk_at: float | None = None
    chunks_sent: int = 0
    disconnected: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    raw: bytes = b""  # the body as received (multipart audio uploads)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or []) if isinstance(self.body, dict) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or []) if isinstance(self.body, dict) else []

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options") if isinstance(self.body, dict) else None
        return isinstance(options, dict) and options.get("include_usage") is True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's listen backlog is 5: 16 clients connecting at once on a loaded machine
    # overflow it, and some of their connections are reset (bench/proxy.py at concurrency 16)
    request_queue_size = 128

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class _Dropped(Exception):
    """The client went away while we were writing."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1"
    timeout = 30  # an idle keep-alive connection is closed after this long
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- routing ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path.rstrip("/") == "/v1/models":
            self._json(
                200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in fake.models]}
            )
        else:
            self._json(404, ErrorReply(404, f"Unknown request URL: GET {self.path}", code="unknown_url").body())

    def do_POST(self) -> None:
        fake = self.server.fake
        received_at = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        request = RecordedRequest(
            method="POST",
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_at=received_at,
            raw=raw,
        )
        fake._record(request)
        try:
            self._handle(request)
        except _Dropped:
            request.disconnected = True
            self.close_connection = True
        finally:
            request.done.set()

    def _handle(self, request: RecordedRequest) -> None:
        fake = self.server.fake
        if self.path.split("?")[0].rstrip("/") in ("/v1/audio/transcriptions", "/v1/audio/speech"):
            self._audio(request)
            return
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._error(request, ErrorReply(404, f"Unknown request URL: POST {self.path}", code="unknown_url"))
            return
        if fake.api_key is not None and request.headers.get("authorization") != f"Bearer {fake.api_key}":
            self._error(request, ErrorReply(401, "Incorrect API key provided.", code="invalid_api_key"))
            return
        if not isinstance(request.body, dict):
            self._error(request, ErrorReply(400, "We could not parse the JSON body of your request."))
            return
        if fake.validate:
            problem = validate_chat_request(request.body)
            if problem is not None:
                self._error(request, ErrorReply(400, problem[0], param=problem[1]))
                return
        scripted = fake._next_scripted()
        request.scripted = scripted
        if scripted is None:
            self._error(request, ErrorReply(500, "fake_openai: no scripted response left for this request"))
            return
        if scripted.delay:
            time.sleep(scripted.delay)
        if isinstance(scripted, ErrorReply):
            self._error(request, scripted)
        elif request.stream:
            self._stream(request, scripted)
        else:
            self._json(200, completion_body(request, scripted), scripted.headers, request=request)

    def _audio(self, request: RecordedRequest) -> None:
        from tests.support.fake_openai_audio import speech_pcm, transcription_request

        fake = self.server.fake
        if fake.api_key is not None and request.headers.get("authorization") != f"Bearer {fake.api_key}":
            self._error(request, ErrorReply(401, "Incorrect API key provided.", code="invalid_api_key"))
            return
        if request.path.rstrip("/").endswith("/transcriptions"):
            audio = transcription_request(request)
            fake.audio_received.append(audio)
            if audio.error is not None:
                self._error(request, ErrorReply(400, audio.error))
                return
            with fake._lock:
                text = fake.transcripts.popleft() if fake.transcripts else None
            if text is None:
                self._error(request, ErrorReply(500, "fake_openai: no scripted transcript left for this request"))
                return
            self._json(200, {"text": text, "usage": {"type": "duration", "seconds": audio.seconds}}, request=request)
            return
        body = request.body if isinstance(request.body, dict) else {}
        if not isinstance(body.get("input"), str) or not body.get("voice") or not body.get("model"):
            self._error(request, ErrorReply(400, "model, voice and input are required"))
            return
        if body.get("response_format") != "pcm":
            self._error(request, ErrorReply(400, "fake_openai speaks only response_format=pcm"))
            return
        request.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "audio/pcm")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in speech_pcm(body["input"], fake.speech_seconds_per_char):
            if request.first_chunk_at is None:
                request.first_chunk_at = time.perf_counter()
            self._write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            request.chunks_sent += 1
        self._write(b"0\r\n\r\n")

    # -- responses ----------------------------------------------------------------------------

    def _json(
        self,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        request: RecordedRequest | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{next(_ids)}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if request is not None:
            request.status = status
            request.first_chunk_at = time.perf_counter()
        self._write(data)

    def _error(self, request: RecordedRequest, error: ErrorReply) -> None:
        headers = dict(error.headers)
        if error.retry_after is not None:
            headers["retry-after"] = f"{error.retry_after:g}"
        if error.retry_after_ms is not None:
            headers["retry-after-ms"] = str(error.retry_after_ms)
        request.status = error.status
        self._json(error.status, error.body(), headers)

    def _stream(self, request: RecordedRequest, reply: Reply) -> None:
        request.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_fake_{next(_ids)}")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        hold = reply.hold or self.server.fake.released
        for n, chunk in enumerate(stream_chunks(request, reply)):
            if n == reply.drop_after:
                self._drop()
            if n == reply.end_after:
                self._write(b"0\r\n\r\n")
                self.close_connection = True
                return
            if n == reply.error_event_after:
                error = reply.error_event or {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
                self._event(request, json.dumps({"error": error}))
                self._write(b"0\r\n\r\n")
                return
            if n == reply.hold_after:
                hold.wait(10)
            if n and reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            self._event(request, chunk if isinstance(chunk, str) else json.dumps(chunk, separators=(",", ":")))
        if reply.drop_after is not None and reply.drop_after >= request.chunks_sent:
            self._drop()
        self._event(request, "[DONE]", count=False)
        self._write(b"0\r\n\r\n")

    def _event(self, request: RecordedRequest, data: str, *, count: bool = True) -> None:
        payload = f"data: {data}\n\n".encode()
        self._write(b"%x\r\n%s\r\n" % (len(payload), payload))
        if count:
            if request.first_chunk_at is None:
                request.first_chunk_at = time.perf_counter()
            request.chunks_sent += 1

    def _drop(self) -> None:
        """Close the connection in the middle of the chunked body."""
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:  # BrokenPipe, ConnectionReset: the client closed
            raise _Dropped from exc


_ids = itertools.count(1)


class FakeOpenAI:
    """The fake server; see the module's docstring. Use it as a context manager or via the
    `fake_openai` fixture."""

    def __init__(self, *, api_key: str | None = None, validate: bool = True) -> None:
        self.api_key = api_key
        """When set, requests must carry `Authorization: Bearer <api_key>` (else 401)."""
        self.validate = validate
        self.models = ["gpt-4o-mini", "fake-model"]
        self.requests: list[RecordedRequest] = []
        self.released = threading.Event()
        self._script: deque[Scripted] = deque()
        # audio endpoints: transcripts handed out in order, the audio each transcription received,
        # and how long the generated speech (a tone) lasts per character of input
        self.transcripts: deque[str] = deque()
        self.audio_received: list[Any] = []
        self.speech_seconds_per_char = 0.02
        self._lock = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeOpenAI is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def env(self, api_key: str = "sk-fake") -> dict[str, str]:
        """Environment variables that point the `openai` client (and Meshsite) at this fake."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": self.api_key or api_key}

    # -- scripting ----------------------------------------------------------------------------

    def script(self, *items: Scripted) -> FakeOpenAI:
        with self._lock:
            self._script.extend(items)
        return self

    def reply(self, text: str = "", **options: Any) -> Reply:
        """Queue a `Reply` (see its fields for `options`) and return it."""
        reply = Reply(text=text, **options)
        self.script(reply)
        return reply

    def error(self, status: int, message: str | None = None, **options: Any) -> ErrorReply:
        """Queue an `ErrorReply` and return it."""
        error = ErrorReply(status, message or _default_message(status), **options)
        self.script(error)
        return error

    def transcribe(self, *texts: str) -> FakeOpenAI:
        """Queue the transcripts `/v1/audio/transcriptions` answers, one per request, in order. The fake
        recognises no speech: it checks and records the audio (`audio_received`) and returns these."""
        with self._lock:
            self.transcripts.extend(texts)
        return self

    @property
    def pending(self) -> int:
        """Scripted items not yet used."""
        with self._lock:
            return len(self._script)

    def release(self) -> None:
        """Let streams paused with `hold_after` (and no own `hold`) go on."""
        self.released.set()

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.transcripts.clear()
            self.audio_received.clear()
        self.released.clear()

    # -- inspection ---------------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0].rstrip("/").endswith("/chat/completions")]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError("fake_openai received no request")
            return self.requests[-1]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` requests have arrived (for tests driving a client in another thread
        or process); raises AssertionError on timeout."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"fake_openai got {len(self.requests)} request(s), expected {count}")
            return list(self.requests)

    # -- internals ----------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()

    def _next_scripted(self) -> Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started `FakeOpenAI`, stopped after the test. Import it into a conftest.py to use it."""
    with FakeOpenAI() as server:
        yield server


# -- the wire format ---------------------------------------------------------------------------


def _default_message(status: int) -> str:
    return {
        400: "Invalid request.",
        401: "Incorrect API key provided.",
        429: "Rate limit reached for requests. Please try again later.",
        500: "The server had an error while processing your request. Sorry about that!",
        502: "Bad gateway.",
        503: "The engine is currently overloaded, please try again later.",
    }.get(status, f"HTTP {status}")


def _split_text(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+", text) if text else []


def _split_even(text: str, pieces: int) -> list[str]:
    if not text:
        return []
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def _call_ids(reply: Reply) -> list[str]:
    return [call.id or f"call_fake{n}_{next(_ids)}" for n, call in enumerate(reply.tool_calls)]


def _usage(request: RecordedRequest, reply: Reply) -> dict[str, Any]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = max(1, len(json.dumps(request.messages)) // 4)
        produced = len(reply.text) + sum(len(c.arguments_text) + len(c.name) for c in reply.tool_calls)
        completion = max(1, produced // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def stream_chunks(request: RecordedRequest, reply: Reply) -> Iterator[Mapping[str, Any] | str]:
    """The `chat.completion.chunk` objects for a reply, as the real API orders them."""
    if reply.raw_chunks is not None:
        yield from reply.raw_chunks
        return
    base = {
        "id": f"chatcmpl-fake{next(_ids)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model or request.model or "fake-model",
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }
    include_usage = request.include_usage

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            out["usage"] = None
        return out

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    pieces = list(reply.text_chunks) if reply.text_chunks is not None else _split_text(reply.text)
    for piece in pieces:
        yield chunk({"content": piece})
    ids = _call_ids(reply)
    per_call: list[list[dict[str, Any]]] = []
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, ids, strict=True)):
        deltas = [{"index": index, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}]
        deltas += [
            {"index": index, "function": {"arguments": a}}
            for a in _split_even(call.arguments_text, reply.argument_chunks)
        ]
        per_call.append(deltas)
    if reply.interleave:
        ordered = [d for group in itertools.zip_longest(*per_call) for d in group if d is not None]
    else:
        ordered = [d for deltas in per_call for d in deltas]
    for delta in ordered:
        yield chunk({"tool_calls": [delta]})
    yield chunk({}, _finish_reason(reply))
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(request, reply)}


def completion_body(request: RecordedRequest, reply: Reply) -> dict[str, Any]:
    """The non-streamed `chat.completion` object for a reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None, "annotations": []}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments_text}}
            for call, call_id in zip(reply.tool_calls, _call_ids(reply), strict=True)
        ]
    return {
        "id": f"chatcmpl-fake{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or request.model or "fake-model",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(reply)}],
        "usage": _usage(request, reply),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def validate_chat_request(body: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """What the real API would refuse with 400, as (message, param); None when acceptable."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter", "model"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "[] is too short - 'messages'", "messages"
    waiting: list[str] = []  # tool_call ids still to be answered
    waiting_since: int | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
        ):
            return f"Invalid value for 'messages[{i}].role'.", f"messages.[{i}].role"
        role = message["role"]
        if role == "tool":
            if message.get("tool_call_id") not in waiting:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                    "'tool_calls'.",
                    f"messages.[{i}].role",
                )
            waiting.remove(message["tool_call_id"])
            continue
        if waiting:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(waiting)}",
                f"messages.[{waiting_since}].role",
            )
        if role == "assistant" and message.get("tool_calls"):
            waiting = [str(call.get("id")) for call in message["tool_calls"] if isinstance(call, dict)]
            waiting_since = i
    if waiting:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(waiting)}",
            f"messages.[{waiting_since}].role",
        )
    for n, tool in enumerate(body.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return f"Missing required parameter: 'tools[{n}].function.name'.", f"tools[{n}].function.name"
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", function["name"]):
            return (
                f"Invalid 'tools[{n}].function.name': string does not match pattern. Expected a string that "
                "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{n}].function.name",
            )
    return None
