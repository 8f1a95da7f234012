"""The events `stream_chat` yields, and `ChatResult`, which folds them into one assistant message.

Order within one call: `Retrying` (zero or more, before any output), then `TextDelta`,
`ToolCallStarted` and `ToolCallArgumentsDelta` as the upstream streams them (interleaved when the
model mixes them), then, once the upstream has finished: one `ToolCallEnded` per tool call in
index order, `Usage` (when the upstream reported it) and finally `Finished`. A stream that breaks
raises `LLMStreamError` instead of ending: no `ToolCallEnded` or `Finished` then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import LLMError


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's text (a refusal's text arrives this way too)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """The model began a tool call. `index` counts the calls of this response from 0."""

    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallArgumentsDelta:
    """A piece of a tool call's arguments (JSON text, split anywhere)."""

    index: int
    delta: str


@dataclass(frozen=True, slots=True)
class ToolCallEnded:
    """A complete tool call, emitted once the stream has ended.

    `arguments_json` is the model's text exactly as streamed: it may be invalid JSON (the caller
    decides what to do about that); `arguments()` parses it.
    """

    index: int
    id: str
    name: str
    arguments_json: str

    def arguments(self) -> Any:
        """The parsed arguments; `{}` for empty text. Raises `ValueError` for invalid JSON."""
        if not self.arguments_json.strip():
            return {}
        return json.loads(self.arguments_json)

    def to_openai(self) -> dict[str, Any]:
        """The call as it goes into an assistant message's `tool_calls` list."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments_json}}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts the upstream reported for this call (`stream_options.include_usage`).

    `cached_tokens` is the part of `prompt_tokens` served from the upstream's prompt cache, and
    `reasoning_tokens` the part of `completion_tokens` spent on hidden reasoning, when reported.
    `model` is the model name the upstream answered with (often a dated version of the one asked).
    """

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """The upstream finished: `stop`, `tool_calls`, `length`, `content_filter`, or what the server said."""

    finish_reason: str


@dataclass(frozen=True, slots=True)
class Retrying:
    """The request failed before any output and will be sent again after `delay` seconds.

    Not output: a consumer may show it ("upstream busy, retrying") or ignore it.
    """

    attempt: int
    delay: float
    error: LLMError


LLMEvent = TextDelta | ToolCallStarted | ToolCallArgumentsDelta | ToolCallEnded | Usage | Finished | Retrying


@dataclass
class ChatResult:
    """Folds a stream's events into the assistant's answer.

    >>> result = ChatResult()
    >>> async for event in stream_chat(config, messages):
    ...     result.feed(event)
    >>> messages.append(result.to_message())
    """

    text: str = ""
    tool_calls: list[ToolCallEnded] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    retries: int = 0

    def feed(self, event: LLMEvent) -> None:
        if isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, ToolCallEnded):
            self.tool_calls.append(event)
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finished):
            self.finish_reason = event.finish_reason
        elif isinstance(event, Retrying):
            self.retries += 1

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def to_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation (OpenAI chat format)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        return message
