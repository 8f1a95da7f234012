"""LangChain: a `Runnable` as a TaskRunner, and room toolkits as LangChain `StructuredTool`s.

Needs `langchain-core` (`pip install 'meshsite-client[langchain]'`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..agents.task_runner import AskContext, Schema, TaskRunner
from ..errors import RpcError
from .room_tools import RoomTool, room_tools

try:
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable, RunnableConfig
    from langchain_core.tools import StructuredTool, ToolException
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "meshsite_client.integrations.langchain needs langchain-core: pip install 'meshsite-client[langchain]'"
    ) from exc

if TYPE_CHECKING:
    from ..client import RoomClient


def langchain_output(result: Any) -> Any:
    """How a runnable's result becomes the answer: a message (an `AIMessage`, say) becomes
    `{"content": <its content>}`, a pydantic model its dump; anything else is passed through."""
    if isinstance(result, BaseMessage):
        return {"content": result.content}
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    return result


class LangChainTaskRunner(TaskRunner):
    """Answers each ask with `await runnable.ainvoke(arguments, config)`.

    The runnable gets the validated arguments (a dict, or the input model's instance); its
    result goes through `langchain_output()` and is checked against `output_schema`.
    """

    def __init__(
        self,
        runnable: Runnable[Any, Any],
        *,
        name: str,
        input_schema: Schema,
        output_schema: Schema | None = None,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self.runnable = runnable
        self.runnable_config = config
        super().__init__(name=name, input_schema=input_schema, output_schema=output_schema, **kwargs)

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        config: RunnableConfig = dict(self.runnable_config or {})  # type: ignore[assignment]
        config.setdefault("run_name", self.name)
        metadata = dict(config.get("metadata") or {})
        metadata.setdefault("meshsite_call_id", context.call_id)
        config["metadata"] = metadata
        return langchain_output(await self.runnable.ainvoke(arguments, config))


def _structured_tool(spec: RoomTool, handle_tool_error: bool) -> StructuredTool:
    async def call(**arguments: Any) -> Any:
        try:
            return await spec(arguments)
        except RpcError as exc:
            if handle_tool_error:
                raise ToolException(str(exc)) from exc
            raise

    return StructuredTool.from_function(
        coroutine=call,
        name=spec.name,
        description=spec.description,
        args_schema=spec.input_schema,
        handle_tool_error=handle_tool_error,
    )


def langchain_tools(
    room: RoomClient | AskContext,
    toolkit_names: Iterable[str] | None = None,
    *,
    on_behalf_of_id: str | None = None,
    timeout: float | None = None,
    handle_tool_error: bool = False,
) -> list[StructuredTool]:
    """Room toolkits' tools as LangChain `StructuredTool`s that call `room.invoke(...)`.

    The args schema is the tool's JSON Schema (the server validates the arguments). Which
    toolkits and how tools are named: see `room_tools`. With `handle_tool_error=True`, a
    failed call becomes the tool's text result for the model instead of an exception.
    """
    specs = room_tools(room, toolkit_names, on_behalf_of_id=on_behalf_of_id, timeout=timeout)
    return [_structured_tool(spec, handle_tool_error) for spec in specs]
