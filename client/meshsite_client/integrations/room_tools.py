"""Room toolkits as plain callables: what the framework adapters turn into native tools."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..agents.task_runner import AskContext

if TYPE_CHECKING:
    from ..client import RoomClient

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class RoomTool:
    """One tool of a room toolkit, callable with `await room_tool(arguments)`.

    `name` is `<toolkit>_<tool>` with characters other than letters, digits, `_` and `-`
    replaced by `_` (what LLM tool-calling APIs accept).
    """

    name: str
    toolkit: str
    tool: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    participant_id: str | None
    room: RoomClient = field(repr=False)
    on_behalf_of_id: str | None = None
    timeout: float | None = None
    traceparent: str | None = field(default=None, repr=False)

    async def __call__(self, arguments: dict[str, Any] | None = None) -> Any:
        return await self.room.invoke(
            self.toolkit,
            self.tool,
            arguments or {},
            participant_id=self.participant_id,
            on_behalf_of_id=self.on_behalf_of_id,
            timeout=self.timeout,
            traceparent=self.traceparent,
        )


def room_tools(
    source: RoomClient | AskContext,
    toolkit_names: Iterable[str] | None = None,
    *,
    on_behalf_of_id: str | None = None,
    timeout: float | None = None,
) -> list[RoomTool]:
    """The tools of the room's toolkits, from the client's current `room.toolkits`.

    `toolkit_names=None` takes every toolkit hosted by another participant (not the built-in
    ones, not this participant's own); naming toolkits takes exactly those, built-ins included
    (ValueError when one is not in the room). With an `AskContext` as `source`, the calls act on
    behalf of the participant who asked and continue its trace.
    """
    traceparent: str | None = None
    if isinstance(source, AskContext):
        room = source.room
        asker = source.asker.get("id")
        if on_behalf_of_id is None and isinstance(asker, str) and asker:
            on_behalf_of_id = asker
        traceparent = source.traceparent
    else:
        room = source
    me = room.participant.id
    toolkits = list(room.toolkits)
    if toolkit_names is None:
        chosen = [t for t in toolkits if t.participant_id is not None and t.participant_id != me]
    else:
        names = list(dict.fromkeys(toolkit_names))
        missing = [n for n in names if not any(t.name == n for t in toolkits)]
        if missing:
            raise ValueError(f"no toolkit named {', '.join(missing)} in the room")
        chosen = [t for n in names for t in toolkits if t.name == n]
    result: list[RoomTool] = []
    taken: set[str] = set()
    for toolkit in chosen:
        for info in toolkit.tools:
            name = _UNSAFE.sub("_", f"{toolkit.name}_{info.name}")
            if name in taken:
                name = _UNSAFE.sub("_", f"{name}_{toolkit.participant_identity or toolkit.participant_id}")
            taken.add(name)
            schema = dict(info.input_schema) or {"type": "object", "properties": {}}
            result.append(
                RoomTool(
                    name=name,
                    toolkit=toolkit.name,
                    tool=info.name,
                    description=info.description or f"{info.name} from the {toolkit.name} toolkit",
                    input_schema=schema,
                    output_schema=info.output_schema,
                    participant_id=toolkit.participant_id,
                    room=room,
                    on_behalf_of_id=on_behalf_of_id,
                    timeout=timeout,
                    traceparent=traceparent,
                )
            )
    return result
