"""`function_task_runner`: a plain (sync or async) function as a TaskRunner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..agents.task_runner import AskContext, TaskRunner
from ..tools import Tool


class FunctionTaskRunner(TaskRunner):
    """A TaskRunner whose `ask` calls a function with the arguments as keywords.

    The schemas come from the function's signature, as for `@tool`: the input schema from the
    parameters' type hints, the output schema from the return annotation (none without one).
    A parameter annotated `AskContext` (or `ToolContext`) receives the ask's context.
    """

    def __init__(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        name = kwargs.get("name") or getattr(fn, "__name__", "")
        self.tool = Tool(fn, name=name, description=kwargs.get("description"))
        if kwargs.get("description") is None:
            kwargs["description"] = self.tool.description
        kwargs.setdefault("input_schema", self.tool.input_schema)
        kwargs.setdefault("output_schema", self.tool.output_schema)
        kwargs["name"] = name
        super().__init__(**kwargs)

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        return await self.tool.run(arguments, context)


def function_task_runner(
    fn: Callable[..., Any],
    *,
    name: str,
    title: str = "",
    description: str | None = None,
    **kwargs: Any,
) -> FunctionTaskRunner:
    """Wrap `fn` as a TaskRunner named `name` (description: `description`, else the first
    paragraph of its docstring). Other keywords go to the agent (rules, metadata, requires, ...)."""
    return FunctionTaskRunner(fn, name=name, title=title, description=description, **kwargs)
