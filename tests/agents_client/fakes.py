"""Test doubles: a stand-in for RoomClient that records what an agent does to its room and runs
registered tools like the client's hosting does (bind, then execute), and a PydanticAI model
that calls one tool."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from meshsite_client import Participant, ToolContext, Toolkit, ToolkitInfo
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


class FakeRoom:
    def __init__(self, toolkits: list[dict[str, Any]] | None = None, identity: str = "robot") -> None:
        self.participant = Participant(id="p_me", identity=identity, role="agent", name=identity)
        self.toolkits = [ToolkitInfo.from_wire(t) for t in toolkits or []]
        self.hosted: dict[str, Toolkit] = {}
        self.attributes: dict[str, Any] = {}
        self.invocations: list[dict[str, Any]] = []
        self.answers: dict[tuple[str, str], Any] = {}
        self.connected = True
        self.room = None
        self._callbacks: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    # -- what agents use -------------------------------------------------------------------

    async def register_toolkit(self, toolkit: Toolkit) -> ToolkitInfo:
        self.hosted[toolkit.name] = toolkit
        return ToolkitInfo.from_wire({**toolkit.to_wire(), "participant_id": self.participant.id})

    async def unregister_toolkit(self, name: str) -> bool:
        return self.hosted.pop(name, None) is not None

    async def set_attributes(self, attributes: dict[str, Any]) -> Participant:
        for key, value in attributes.items():
            if value is None:
                self.attributes.pop(key, None)
            else:
                self.attributes[key] = value
        self.participant = dataclasses.replace(self.participant, attributes=dict(self.attributes))
        return self.participant

    def on(self, method: str, callback: Any) -> Any:
        entry = (method, callback)
        self._callbacks.append(entry)
        return lambda: self._callbacks.remove(entry) if entry in self._callbacks else None

    async def wait_for(self, method: str, predicate: Any = None, timeout: float | None = 5.0) -> Any:
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), timeout)

    async def invoke(self, toolkit: str, tool: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        self.invocations.append({"toolkit": toolkit, "tool": tool, "arguments": arguments, **kwargs})
        answer = self.answers.get((toolkit, tool), {"ok": True})
        if isinstance(answer, Exception):
            raise answer
        return answer

    # -- what tests use --------------------------------------------------------------------

    async def emit(self, method: str, params: dict[str, Any]) -> None:
        """Deliver a (local) event to the callbacks registered with `on`."""
        for wanted, callback in list(self._callbacks):
            if wanted in ("*", method):
                result = callback(params)
                if asyncio.iscoroutine(result):
                    await result

    def add_toolkit(self, data: dict[str, Any]) -> None:
        self.toolkits.append(ToolkitInfo.from_wire(data))
        self._changed.set()

    async def call(
        self,
        toolkit: str,
        tool: str,
        arguments: dict[str, Any],
        caller: dict[str, Any] | None = None,
        on_behalf_of: dict[str, Any] | None = None,
    ) -> Any:
        """Run a hosted tool the way the client's hosting does."""
        handler = self.hosted[toolkit].tools[tool]
        ctx = ToolContext(
            call_id="k_1",
            toolkit=toolkit,
            tool=tool,
            caller=caller or {"id": "p_caller", "identity": "alice"},
            on_behalf_of=on_behalf_of,
            deadline=None,
            room=self,  # type: ignore[arg-type]
        )
        args, kwargs = handler.signature.bind(arguments, ctx)
        return await handler.execute(args, kwargs)


def calling_model(tool_name: str, args: dict[str, Any]) -> FunctionModel:
    """A model that calls `tool_name` once, then answers with what the tool returned (as JSON,
    prefixed with the outcome when the call did not succeed)."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returned = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if not returned:
            assert tool_name in {t.name for t in info.function_tools}
            return ModelResponse(parts=[ToolCallPart(tool_name, args)])
        last = returned[-1]
        prefix = "" if last.outcome == "success" else f"{last.outcome}: "
        return ModelResponse(parts=[TextPart(prefix + json.dumps(last.content))])

    return FunctionModel(respond)
