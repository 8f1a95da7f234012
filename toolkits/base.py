"""The contract of a built-in (server-hosted) toolkit.

A built-in toolkit is a module in `toolkits/builtin/` holding one `BuiltinToolkit` subclass and
listed in `toolkits.registry.BUILTIN_TOOLKITS`. Its tools are methods marked with `@builtin_tool`;
each receives a `CallContext` and the arguments, already validated against its input schema, and
returns JSON-able output or raises `MeshError`. Grants for `toolkit.tool` are checked before the
method runs, the call is timed out at its deadline, and it is written to the ledger: a tool only
checks what is specific to it (a storage path, a queue name).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .schema import ToolSpec, build_tool

if TYPE_CHECKING:
    from rooms.mesh.node import Node
    from rooms.mesh.session import Session

ToolMethod = Callable[[Any, "CallContext", dict[str, Any]], Awaitable[Any]]
F = TypeVar("F", bound=ToolMethod)


@dataclass(frozen=True)
class CallContext:
    node: "Node"
    caller: "Session"
    on_behalf_of: dict[str, Any] | None
    call_id: str
    traceparent: str | None
    deadline: float  # unix time at which the call times out

    def remaining(self) -> float:
        import time

        return max(0.01, self.deadline - time.time())


def builtin_tool(
    *, description: str, input_schema: dict[str, Any], output_schema: dict[str, Any] | None = None
) -> Callable[[F], F]:
    def mark(method: F) -> F:
        method._tool_definition = {  # type: ignore[attr-defined]
            "name": method.__name__,
            "description": description,
            "input_schema": input_schema,
            "output_schema": output_schema,
        }
        return method

    return mark


class BuiltinToolkit:
    name: ClassVar[str]
    description: ClassVar[str]
    tools: ClassVar[dict[str, ToolSpec]]
    _methods: ClassVar[dict[str, str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.tools = {}
        cls._methods = {}
        for attr in dir(cls):
            definition = getattr(getattr(cls, attr), "_tool_definition", None)
            if definition:
                spec = build_tool(definition, f"{cls.__name__}.{attr}")
                cls.tools[spec.name] = spec
                cls._methods[spec.name] = attr

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "public": True,
            "participant_id": None,
            "participant_identity": None,
            "tools": [spec.to_record() for spec in self.tools.values()],
        }

    async def run_tool(self, tool: str, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        method = getattr(self, self._methods[tool])
        return await method(ctx, arguments)
