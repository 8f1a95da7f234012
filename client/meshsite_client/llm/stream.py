"""`stream_chat`: one streamed Chat Completions call through the official `openai` client.

    config = LLMConfig(model="gpt-4o-mini")          # key from OPENAI_API_KEY
    async with contextlib.aclosing(stream_chat(config, messages, tools=tools)) as events:
        async for event in events:
            ...

Retries: a 429, a 5xx, a connection failure or a timeout is retried up to `config.max_retries`
times with exponential backoff (or the upstream's `Retry-After` / `retry-after-ms`), but only
while nothing has been yielded yet; each retry is announced with a `Retrying` event. Once output
has begun, a broken stream raises `LLMStreamError` (the partial answer has been seen, and sending
the request again would produce a different one). The `openai` client's own retries are off, so
this is the only retry loop.

Stopping early (an interrupted turn): close the generator (`aclose()`, or `contextlib.aclosing`
as above); that closes the HTTP response, so the upstream stops generating.

Clients: one `openai.AsyncOpenAI` per (API key, base URL, timeout) and event loop, reused across
calls so connections stay warm; `warm_up(config)` makes one ahead of the first call, and
`close_clients()` closes the current loop's ones.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..tracing import child_traceparent, current_traceparent, is_valid_traceparent
from .config import LOCAL_API_KEY, LLMConfig
from .errors import (
    ContextWindowExceeded,
    LLMAuthError,
    LLMBadRequest,
    LLMConnectionError,
    LLMError,
    LLMRateLimited,
    LLMServerError,
    LLMStatusError,
    LLMStreamError,
)
from .events import (
    Finished,
    LLMEvent,
    Retrying,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallEnded,
    ToolCallStarted,
    Usage,
)

try:
    import openai
    from openai.types.chat import ChatCompletionChunk
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("meshsite_client.llm needs the `llm` extra: pip install 'meshsite-client[llm]'") from exc

log = logging.getLogger("meshsite_client.llm")


async def stream_chat(
    config: LLMConfig,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: str | Mapping[str, Any] | None = None,
    *,
    traceparent: str | None = None,
) -> AsyncIterator[LLMEvent]:
    """Stream one chat completion as `LLMEvent`s (see `events` for their order).

    `messages` and `tools` are in the OpenAI Chat Completions format and sent as they are.
    `traceparent` (default: a child of the current one, if any) is sent as the W3C `traceparent`
    header, so a tracing proxy or server joins the turn's trace.

    Raises `NoLLMConfigured` before any request when there is no key and no base URL, and the other
    `LLMError`s as documented in `errors`.
    """
    resolved = config.resolve()
    client = _client_for(resolved)
    if traceparent is None:
        parent = current_traceparent.get()
        traceparent = child_traceparent(parent) if parent and is_valid_traceparent(parent) else None
    headers = {"traceparent": traceparent} if traceparent else None

    attempt = 0
    while True:
        assembler = _Assembler()
        yielded = False
        try:
            # `client.post` (the client's documented call for any endpoint) sends the body as it
            # is. `chat.completions.create` first walks every message through its type-driven
            # transform, about 0.15 ms a message: 25 ms before a 150-message thread's request left.
            stream = await client.post(
                "/chat/completions",
                body=request_body(resolved, messages, tools, tool_choice),
                options={"headers": headers} if headers else {},
                cast_to=ChatCompletionChunk,
                stream=True,
                stream_cls=openai.AsyncStream[ChatCompletionChunk],
            )
        except openai.APIError as exc:
            error = _translate(exc)
            delay = _retry_delay(resolved, attempt, error)
            if delay is None:
                raise error from exc
            attempt += 1
            log.info("LLM request failed (%s); retry %d of %d in %.2fs", error, attempt, resolved.max_retries, delay)
            yield Retrying(attempt, delay, error)
            await asyncio.sleep(delay)
            continue

        failure: LLMError | None = None
        try:
            async for chunk in stream:
                for event in assembler.feed(chunk):
                    yielded = True
                    yield event
        except openai.APIError as exc:
            if assembler.finish_reason is not None and isinstance(exc, openai.APIConnectionError):
                # The answer is complete; only the trailing usage chunk (or [DONE]) was lost.
                log.warning("LLM stream closed after the model finished, before its usage chunk: %s", exc)
            else:
                failure = _stream_failure(exc, assembler)
                failure.__cause__ = exc
        except ValueError as exc:  # a `data:` line that is not JSON
            failure = LLMStreamError(f"the upstream sent a malformed chunk after {assembler.chunks} chunk(s): {exc}")
            failure.__cause__ = exc
        finally:
            await stream.close()

        if failure is None and assembler.finish_reason is None:
            failure = LLMStreamError(
                f"the upstream ended the stream before the model finished (after {assembler.chunks} chunk(s))"
            )
        if failure is not None:
            delay = None if yielded else _retry_delay(resolved, attempt, failure)
            if delay is None:
                raise failure
            attempt += 1
            log.info("LLM stream failed before any output (%s); retry %d in %.2fs", failure, attempt, delay)
            yield Retrying(attempt, delay, failure)
            await asyncio.sleep(delay)
            continue

        for event in assembler.end_events():
            yield event
        return


def request_body(
    config: LLMConfig,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    tool_choice: str | Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The Chat Completions request body: the config's extra options first, so the call's own
    fields win, as `extra_body` would not let them."""
    body: dict[str, Any] = {**config.options, "model": config.model, "messages": list(messages), "stream": True}
    if config.include_usage:
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
    if tools:
        body["tools"] = list(tools)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    return body


async def warm_up(config: LLMConfig) -> None:
    """Make the `openai` client for `config` in the running loop ahead of the first call (its setup
    blocks the loop for some tens of ms once). Raises `NoLLMConfigured` like `stream_chat`."""
    client = _client_for(config.resolve())
    _ = client.chat.completions  # imports the resource modules


async def close_clients() -> None:
    """Close the `openai` clients `stream_chat` made in the running event loop."""
    loop = asyncio.get_running_loop()
    clients = _clients.pop(loop, {})
    for client in clients.values():
        await client.close()


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str | None, float], openai.AsyncOpenAI]]
_clients = weakref.WeakKeyDictionary()


def _client_for(config: LLMConfig) -> openai.AsyncOpenAI:
    loop = asyncio.get_running_loop()
    api_key = config.api_key or LOCAL_API_KEY
    key = (api_key, config.base_url, config.timeout)
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(key)
    if client is None:
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=config.base_url,
            timeout=openai.Timeout(config.timeout, connect=min(config.timeout, 10.0)),
            max_retries=0,  # retries are ours: only before output, with Retrying events
        )
        per_loop[key] = client
    return client


def _retry_delay(config: LLMConfig, attempt: int, error: LLMError) -> float | None:
    """Seconds to wait before retrying after `error`, or None to give up now."""
    if not error.retryable or attempt >= config.max_retries:
        return None
    retry_after = error.retry_after
    if retry_after is not None:
        if retry_after > config.max_retry_after:
            log.info("not retrying: the upstream asks to wait %.1fs (over max_retry_after)", retry_after)
            return None
        return max(retry_after, 0.0)
    backoff = min(config.initial_backoff * 2.0**attempt, config.max_backoff)
    return backoff * (1 - 0.25 * random.random())


def _translate(exc: openai.APIError) -> LLMError:
    """The `openai` exception as one of ours, with the upstream's message, status, type and code."""
    body = exc.body if isinstance(exc.body, Mapping) else None
    message = body.get("message") if body else None
    if not isinstance(message, str) or not message:
        message = exc.message
    kind, code = exc.type, exc.code
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _parse_retry_after(exc.response.headers)
        fields: dict[str, Any] = {"status": status, "type": kind, "code": code, "retry_after": retry_after}
        if status == 429:
            return LLMRateLimited(message, **fields)
        if status >= 500:
            return LLMServerError(message, **fields)
        if status in (401, 403):
            return LLMAuthError(message, **fields)
        if code == "context_length_exceeded":
            return ContextWindowExceeded(message, **fields)
        if status in (408, 409):  # request timeout, lock timeout: transient
            return LLMStatusError(message, retryable=True, **fields)
        return LLMBadRequest(message, **fields)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f": {type(cause).__name__}: {cause}" if cause else ""
        return LLMConnectionError(f"{message}{detail}")
    return LLMError(message, type=kind, code=code)


def _stream_failure(exc: openai.APIError, assembler: _Assembler) -> LLMError:
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        return LLMStreamError(f"the upstream stream broke after {assembler.chunks} chunk(s): {exc.message}{detail}")
    error = _translate(exc)
    # An error event inside the stream (`data: {"error": {...}}`).
    retryable = error.type in ("server_error", "rate_limit_error", "rate_limit_exceeded") or error.retryable
    return LLMStreamError(
        f"the upstream sent an error in the stream: {error.message}",
        status=error.status,
        type=error.type,
        code=error.code,
        retryable=retryable,
    )


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms`, or `retry-after` in seconds (a number or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms):
            return ms / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)
    return seconds if math.isfinite(seconds) else None


@dataclass
class _Call:
    index: int
    id: str | None
    name: str = ""
    started: bool = False
    parts: list[str] = field(default_factory=list)


class _Assembler:
    """Turns chunks into events and remembers what is needed for the end."""

    def __init__(self) -> None:
        self.calls: list[_Call] = []
        self.by_upstream: dict[int, _Call] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.chunks = 0

    def feed(self, chunk: ChatCompletionChunk) -> list[LLMEvent]:
        self.chunks += 1
        events: list[LLMEvent] = []
        if chunk.usage is not None:
            usage = chunk.usage
            prompt_details = usage.prompt_tokens_details
            completion_details = usage.completion_tokens_details
            self.usage = Usage(
                prompt_tokens=usage.prompt_tokens or 0,
                completion_tokens=usage.completion_tokens or 0,
                total_tokens=usage.total_tokens or 0,
                cached_tokens=prompt_details.cached_tokens if prompt_details else None,
                reasoning_tokens=completion_details.reasoning_tokens if completion_details else None,
                model=chunk.model or None,
            )
        for choice in chunk.choices or ():
            if choice.index not in (0, None):
                continue  # n > 1 is not used: only the first choice is followed
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    events.append(TextDelta(delta.content))
                if delta.refusal:
                    events.append(TextDelta(delta.refusal))
                for tool_call in delta.tool_calls or ():
                    self._tool_call_delta(tool_call, events)
            if choice.finish_reason:
                self.finish_reason = str(choice.finish_reason)
        return events

    def _tool_call_delta(self, delta: Any, events: list[LLMEvent]) -> None:
        upstream = delta.index if isinstance(delta.index, int) else len(self.calls)
        call_id = delta.id or None
        function = delta.function
        name = function.name if function is not None and function.name else ""
        arguments = function.arguments if function is not None and function.arguments else ""
        call = self.by_upstream.get(upstream)
        # A new id at a known index is a new call (some servers put parallel calls all at index 0).
        if call is None or (call_id and call.id and call_id != call.id):
            call = _Call(index=len(self.calls), id=call_id)
            self.calls.append(call)
            self.by_upstream[upstream] = call
        elif call_id and not call.id:
            call.id = call_id
        if not call.started and name:
            call.name += name
            self._start(call, events)
        if arguments:
            call.parts.append(arguments)
            if call.started:
                events.append(ToolCallArgumentsDelta(call.index, arguments))

    def _start(self, call: _Call, events: list[LLMEvent]) -> None:
        if call.id is None:
            call.id = f"call_{uuid.uuid4().hex[:24]}"
        call.started = True
        events.append(ToolCallStarted(call.index, call.id, call.name))
        if call.parts:  # arguments that came before the name
            events.append(ToolCallArgumentsDelta(call.index, "".join(call.parts)))

    def end_events(self) -> list[LLMEvent]:
        events: list[LLMEvent] = []
        for call in self.calls:
            if not call.started:
                self._start(call, events)
            assert call.id is not None
            events.append(ToolCallEnded(call.index, call.id, call.name, "".join(call.parts)))
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finished(self.finish_reason or "stop"))
        return events
