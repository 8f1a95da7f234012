"""`Worker`: a background agent that processes the messages of one room queue.

The server runs it (on Celery, see docs/agents.md "Worker"): for each message sent to the queue it
bound the Worker to, the Worker is in the room as a participant and `process_message(message)`
runs. What it returns is recorded with the message's acknowledgement, in one transaction; what it
raises sends the message back to the queue (retried with backoff, then to `<queue>.dlq` with the
error). Override `process_message` with your own code; the default runs one LLM turn:

```python
class Summarizer(Worker):
    name = "summarizer"
    queue = "articles"
    rules = ["Summarize the text in three sentences."]
    tool_toolkits = ["storage"]      # room toolkits the model may use

class Thumbnailer(Worker):
    name = "thumbnailer"
    queue = "images"

    async def process_message(self, message: WorkerMessage) -> dict:
        # message.id is the idempotency key: a message may be processed again (its worker was
        # killed mid-way), so effects outside the return value should be keyed by it
        path = f"thumbnails/{message.id}.png"
        ...
        return {"path": path}
```
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import RpcError
from ..tracing import new_traceparent
from .single_room import SingleRoomAgent

log = logging.getLogger("meshsite_client.agents.worker")


@dataclass(frozen=True)
class WorkerMessage:
    """One delivery of a queue message to a Worker."""

    id: str
    body: Any
    attempt: int  # 1 on the first delivery; more after a failure or a killed worker
    queue: str
    sent_by: str
    sent_at: str = ""
    last_error: str = ""  # what the previous delivery failed with

    @property
    def idempotency_key(self) -> str:
        """Stable across redeliveries of this message: key external effects by it."""
        return f"{self.queue}:{self.id}"

    def prompt(self) -> str:
        """The body as a user prompt: a string as is, `{"prompt": ...}` or `{"text": ...}`, else its JSON."""
        body = self.body
        if isinstance(body, str):
            return body
        if isinstance(body, dict):
            for key in ("prompt", "text"):
                if isinstance(body.get(key), str):
                    return str(body[key])
        return json.dumps(body, ensure_ascii=False)


class Worker(SingleRoomAgent):
    """Processes the messages of `queue`, `concurrency` at a time (in order with the default 1)."""

    kind = "worker"
    queue: str = ""
    concurrency: int = 1
    # Seconds a message is leased while processed; the lease is renewed while the work goes on,
    # so this is how long a crashed worker keeps a message before it is delivered again.
    visibility_timeout: float = 60.0
    # The default LLM turn's settings (see ChatBot).
    model: str = "gpt-4o-mini"
    api_key: str | None = None
    base_url: str | None = None
    context_window: int | None = None
    tool_toolkits: list[str] = []
    max_tool_rounds: int = 8
    tool_timeout: float = 60.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tool_toolkits = list(self.tool_toolkits)
        if not isinstance(self.concurrency, int) or isinstance(self.concurrency, bool) or self.concurrency < 1:
            raise ValueError("a Worker's concurrency must be a positive integer")

    def agent_attributes(self) -> dict[str, Any]:
        attributes = super().agent_attributes()
        attributes["agent"] = {**attributes.get("agent", {}), "kind": self.kind, "queue": self.queue}
        return attributes

    async def process_message(self, message: WorkerMessage) -> Any:
        """Processes one message; the return value (JSON) is recorded as its result. Raise to fail
        this delivery (the error goes with the message to its retry, and to the DLQ in the end).

        The default asks the model (`model`, `rules`) with the message as the prompt, letting it
        use the room toolkits of `tool_toolkits`, and returns `{"text": answer}`."""
        return {"text": await self.run_llm_turn(message)}

    # -- the default LLM turn ----------------------------------------------------------------------

    def llm_config(self) -> Any:
        from ..llm import LLMConfig

        return LLMConfig(
            model=self.model,
            api_key=self.api_key,
            base_url=self.base_url,
            context_window=self.context_window,
            service=self.name,
        )

    async def run_llm_turn(self, message: WorkerMessage) -> str:
        traceparent = new_traceparent()
        system = self.system_prompt() or "You are a background worker. Do what the message asks."
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": message.prompt()},
        ]

        async def record(usage: Any, model: str) -> None:
            await self._record_usage(usage, model, message, traceparent)

        text = await self.answer_with_tools(messages, traceparent, record)
        if text is None:
            raise RuntimeError(f"the model asked for tools more than {self.max_tool_rounds} times")
        return text

    async def answer_with_tools(
        self,
        messages: list[dict[str, Any]],
        traceparent: str,
        record_usage: Callable[[Any, str], Awaitable[None]],
    ) -> str | None:
        """Runs the model on `messages`, and the room tools it asks for (`tool_toolkits`), until it
        answers; None if it still asks for tools after `max_tool_rounds`. `record_usage(usage,
        model)` is awaited for each model call's usage. `messages` grows with the exchange."""
        from ..llm import ChatResult, Usage, stream_chat

        config = self.llm_config()
        tools, targets = self._tools()
        for _round in range(self.max_tool_rounds):
            result = ChatResult()
            async for event in stream_chat(config, messages, tools or None, traceparent=traceparent):
                result.feed(event)
                if isinstance(event, Usage):
                    await record_usage(event, config.model)
            if not result.tool_calls:
                return result.text
            messages.append(result.to_message())
            outputs = await asyncio.gather(*(self._run_tool(call, targets, traceparent) for call in result.tool_calls))
            for call, output in zip(result.tool_calls, outputs, strict=True):
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(output)})
        return None

    def _tools(self) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
        functions: list[dict[str, Any]] = []
        targets: dict[str, tuple[str, str]] = {}
        for toolkit in self.room.toolkits:
            if toolkit.participant_id == self.room.participant.id or not toolkit.public:
                continue
            if not any(fnmatch.fnmatchcase(toolkit.name, pattern) for pattern in self.tool_toolkits):
                continue
            for spec in toolkit.tools:
                name = f"{toolkit.name}__{spec.name}".replace(".", "_")[:64]
                targets[name] = (toolkit.name, spec.name)
                functions.append(
                    {
                        "type": "function",
                        "function": {
                            "name": name,
                            "description": (spec.description or f"{toolkit.name}.{spec.name}")[:1024],
                            "parameters": spec.input_schema or {"type": "object"},
                        },
                    }
                )
        return functions, targets

    async def _run_tool(self, call: Any, targets: dict[str, tuple[str, str]], traceparent: str) -> Any:
        target = targets.get(call.name)
        if target is None:
            return {"error": f"there is no tool named {call.name!r}"}
        try:
            arguments = call.arguments()
        except ValueError as exc:
            return {"error": f"the arguments were not valid JSON: {exc}"}
        try:
            return await self.room.invoke(
                target[0], target[1], arguments, timeout=self.tool_timeout, traceparent=traceparent
            )
        except RpcError as exc:
            return {"error": str(exc)}

    async def _record_usage(self, usage: Any, model: str, message: WorkerMessage, traceparent: str) -> None:
        arguments = {
            "kind": "llm",
            "model": usage.model or model,
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "cached_tokens": min(usage.cached_tokens or 0, usage.prompt_tokens),
        }
        try:
            await self.room.invoke("usage", "record", arguments, traceparent=traceparent)
        except RpcError:
            log.exception("could not record the usage of message %s", message.id)
