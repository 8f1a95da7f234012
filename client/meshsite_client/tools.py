"""Declaring tools (`@tool`) and grouping them into a `Toolkit` to register in a room."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any, overload

from .context import ToolContext
from .schema import HandlerSignature, analyze, first_paragraph

NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"invalid {kind} name {name!r}: must match {NAME_RE.pattern}")
    return name


class Tool:
    """A handler plus the schemas derived from its signature.

    Calling the Tool calls the original function, so decorated functions stay usable directly.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        if isinstance(fn, Tool):
            fn = fn.fn
        if not callable(fn):
            raise TypeError(f"@tool needs a function, got {fn!r}")
        functools.update_wrapper(self, fn)
        self.fn: Callable[..., Any] = fn
        self.name = check_name("tool", name or str(getattr(fn, "__name__", "")))
        self.description = description if description is not None else first_paragraph(fn)
        self.signature: HandlerSignature = analyze(fn, self.name)
        # Callable objects count as async when their __call__ is.
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)

    @property
    def input_schema(self) -> dict[str, Any]:
        return self.signature.input_schema

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return self.signature.output_schema

    @property
    def wants_context(self) -> bool:
        return self.signature.context_param is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }

    async def run(self, arguments: dict[str, Any], ctx: ToolContext | None = None) -> Any:
        """Validate `arguments`, run the handler and return its JSON-able output.

        Raises pydantic.ValidationError for bad arguments and whatever the handler raises.
        Sync handlers run in a worker thread so they cannot stall the connection.
        """
        args, kwargs = self.signature.bind(arguments, ctx)
        return await self.execute(args, kwargs)

    async def execute(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run the handler on already-bound arguments (see `signature.bind`)."""
        if self.is_async:
            result = await self.fn(*args, **kwargs)
        else:
            result = await asyncio.to_thread(self.fn, *args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        return self.signature.dump_output(result)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a function into a `Tool`; usable bare (`@tool`) or configured (`@tool(name=...)`)."""
    if fn is not None:
        return Tool(fn, name=name, description=description)

    def decorate(inner: Callable[..., Any]) -> Tool:
        return Tool(inner, name=name, description=description)

    return decorate


class Toolkit:
    """A named group of tools; `to_wire()` is the `toolkits.register` params."""

    def __init__(
        self,
        name: str,
        tools: Iterable[Tool | Callable[..., Any]],
        *,
        description: str = "",
        public: bool = True,
    ) -> None:
        self.name = check_name("toolkit", name)
        self.description = description
        self.public = public
        self.tools: dict[str, Tool] = {}
        for item in tools:
            wrapped = item if isinstance(item, Tool) else Tool(item)
            if wrapped.name in self.tools:
                raise ValueError(f"toolkit {name!r} has two tools named {wrapped.name!r}")
            self.tools[wrapped.name] = wrapped

    def __repr__(self) -> str:
        return f"<Toolkit {self.name} tools={list(self.tools)}>"

    def get(self, tool_name: str) -> Tool | None:
        return self.tools.get(tool_name)

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "public": self.public,
            "tools": [t.to_wire() for t in self.tools.values()],
        }
