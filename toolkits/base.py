"""The contract of a built-in (server-hosted) toolkit.

A built-in toolkit is a module holding one `BuiltinToolkit` subclass, listed by import path in
`toolkits.registry.BUILTIN_TOOLKITS`. Its tools are methods marked with `@builtin_tool`; each
receives a `CallContext` and the arguments, already validated against its input schema, and
returns JSON-able output or raises `MeshError` (meshsite.errors). Before the method runs, the
caller's grant for `toolkit.tool` is checked; the call is timed out at its deadline and written to
the ledger. A tool only checks what is specific to it (a storage path, a queue name).

The context is all a toolkit sees of the server: the caller, a read-only view of the room, and a
few verbs (`invoke`, `notify`, `broadcast`, `visible_toolkits`). Toolkits never reach into the
routing core, so it can change without them. Adding a built-in toolkit: copy
`toolkits/builtin/participants.py`, rename, register its path.
"""

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from .invocation import InvokeRequest
from .schema import ToolSpec, build_tool


class GrantChecks(Protocol):
    def may(self, section: str, action: str, name: str) -> bool: ...
    def may_invoke(self, toolkit: str, tool: str | None = None) -> bool: ...
    def check_flag(self, name: str, what: str) -> None: ...


class Caller(Protocol):
    """The participant a call comes from (the server's session; read-only here)."""

    @property
    def participant_id(self) -> str: ...
    @property
    def identity(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def room_id(self) -> int: ...
    @property
    def room_name(self) -> str: ...
    @property
    def project_id(self) -> int: ...
    @property
    def grants(self) -> GrantChecks: ...
    @property
    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RoomView:
    """The room as the caller's server node knows it right now. Read-only."""

    participants: Mapping[str, dict[str, Any]]  # participant id -> participant record
    hosted: Collection[tuple[str, str]]  # (host participant id, toolkit name)


class Mesh(Protocol):
    """What the routing core offers toolkits; `rooms.mesh.node.Node` implements it."""

    def room_view(self, room_id: int) -> RoomView: ...

    async def invoke_for(
        self,
        caller: Caller,
        request: InvokeRequest,
        on_behalf_of: dict[str, Any] | None,
        traceparent: str | None,
        *,
        authorised: bool,
        on_progress: Callable[[Any], Awaitable[None]] | None,
    ) -> Any: ...

    async def notify(self, room_id: int, participant_id: str, frame: str) -> bool: ...

    async def broadcast(self, room_id: int, method: str, params: dict[str, Any], exclude: str | None) -> None: ...

    def toolkits_visible_to(self, caller: Caller, host_id: str | None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class CallContext:
    caller: Caller
    on_behalf_of: dict[str, Any] | None
    call_id: str
    traceparent: str | None
    deadline: float  # unix time at which the call times out
    mesh: Mesh
    # relays progress to whoever waits for this call (its caller's tools.progress), if anyone
    report_progress: Callable[[Any], Awaitable[None]] | None = None

    def remaining(self) -> float:
        return max(0.01, self.deadline - time.time())

    def room(self) -> RoomView:
        return self.mesh.room_view(self.caller.room_id)

    async def invoke(
        self,
        request: InvokeRequest,
        *,
        authorised: bool = False,
        on_progress: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Any:
        """Calls another tool for the caller, on the path `tools.invoke` takes (grants unless
        `authorised` because the toolkit checked its own, narrower grant; validation, deadline,
        ledger), in the same trace. Returns its output or raises MeshError."""
        return await self.mesh.invoke_for(
            self.caller,
            request,
            self.on_behalf_of,
            self.traceparent,
            authorised=authorised,
            on_progress=on_progress,
        )

    async def notify(self, participant_id: str, frame: str) -> bool:
        """Sends one frame to one participant of the room, on whichever node holds it."""
        return await self.mesh.notify(self.caller.room_id, participant_id, frame)

    async def broadcast(self, method: str, params: dict[str, Any]) -> None:
        """A notification to everyone else in the room, on every node."""
        await self.mesh.broadcast(self.caller.room_id, method, params, self.caller.participant_id)

    def visible_toolkits(self, host_id: str | None = None) -> list[dict[str, Any]]:
        return self.mesh.toolkits_visible_to(self.caller, host_id)


ToolMethod = Callable[[Any, CallContext, dict[str, Any]], Awaitable[Any]]
F = TypeVar("F", bound=ToolMethod)


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
