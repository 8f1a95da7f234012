"""PydanticAI: an `Agent` as a TaskRunner, and room toolkits as PydanticAI `Tool`s.

Needs `pydantic-ai-slim` (`pip install 'meshsite-client[pydantic-ai]'`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import to_jsonable_python

from ..agents.task_runner import AskContext, Schema, TaskRunner
from ..errors import InvalidArguments, RpcError
from .room_tools import RoomTool, room_tools

try:
    import pydantic_ai
    from pydantic_ai import FunctionToolset, ModelRetry, Tool
    from pydantic_ai import exceptions as pydantic_ai_exceptions
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "meshsite_client.integrations.pydantic_ai needs pydantic-ai-slim: pip install 'meshsite-client[pydantic-ai]'"
    ) from exc

if TYPE_CHECKING:
    from ..client import RoomClient

PROMPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "description": "what to ask the agent"}},
    "required": ["prompt"],
    "additionalProperties": False,
}


def output_json_schema(output_type: Any) -> dict[str, Any]:
    """The JSON Schema of a PydanticAI agent's output type; `{}` (any JSON) when it has none
    that pydantic can describe (output functions, tool outputs, unions of markers...)."""
    try:
        return pydantic.TypeAdapter(output_type).json_schema(mode="serialization")
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError, ValueError):
        return {}


class PydanticAITaskRunner(TaskRunner):
    """Answers `{"prompt": str}` with `{"output": <the agent run's output, as JSON>}`.

    `room_tools`: names of room toolkits handed to the agent for each run as extra tools,
    called on behalf of the participant who asked. `deps` goes to every `agent.run`.
    """

    def __init__(
        self,
        agent: pydantic_ai.Agent[Any, Any],
        *,
        name: str,
        output_schema: Schema | None = None,
        room_tools: Iterable[str] | None = None,
        deps: Any = None,
        **kwargs: Any,
    ) -> None:
        self.agent = agent
        self.deps = deps
        self.room_toolkits = list(room_tools) if room_tools is not None else None
        if output_schema is None:
            output_schema = {
                "type": "object",
                "properties": {"output": output_json_schema(agent.output_type)},
                "required": ["output"],
            }
        kwargs.setdefault("input_schema", PROMPT_SCHEMA)
        super().__init__(name=name, output_schema=output_schema, **kwargs)

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        toolsets = None
        if self.room_toolkits is not None and context.room is not None:
            toolsets = [FunctionToolset(pydantic_ai_tools(context, self.room_toolkits))]
        prompt = arguments["prompt"] if isinstance(arguments, dict) else arguments.prompt
        result = await self.agent.run(prompt, deps=self.deps, toolsets=toolsets)
        return {"output": to_jsonable_python(result.output)}


def _tool(spec: RoomTool) -> Tool[Any]:
    async def call(**arguments: Any) -> Any:
        try:
            return await spec(arguments)
        except InvalidArguments as exc:
            # The model can fix its arguments: tell it what was wrong and let it retry.
            raise ModelRetry(str(exc)) from exc
        except RpcError as exc:
            failed = getattr(pydantic_ai_exceptions, "ToolFailed", None)
            if failed is None:
                raise
            raise failed(str(exc)) from exc

    return Tool.from_schema(call, name=spec.name, description=spec.description, json_schema=spec.input_schema)


def pydantic_ai_tools(
    room: RoomClient | AskContext,
    toolkit_names: Iterable[str] | None = None,
    *,
    on_behalf_of_id: str | None = None,
    timeout: float | None = None,
) -> list[Tool[Any]]:
    """Room toolkits' tools as PydanticAI `Tool`s (`Tool.from_schema`) that call `room.invoke`.

    Arguments a tool refuses (`InvalidArguments`) become `ModelRetry`, so the model corrects
    them; other call errors are reported to the model as failed tool results
    (`pydantic_ai.exceptions.ToolFailed`); a lost connection raises. Which toolkits and how
    tools are named: see `room_tools`.
    """
    specs = room_tools(room, toolkit_names, on_behalf_of_id=on_behalf_of_id, timeout=timeout)
    return [_tool(spec) for spec in specs]
