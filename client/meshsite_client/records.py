"""Typed views of the protocol's records (section 2) and of events.

Records are dataclasses but also answer `record["field"]` and `record.get("field")`, so code
written against the raw JSON shapes keeps working. Unknown wire fields are kept in `extra`
because the server may add fields before this package knows about them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class _Mapping:
    """Read-only mapping-style access over a dataclass's fields and its `extra` dict."""

    def __getitem__(self, key: str) -> Any:
        names = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        if key in names and key != "extra":
            return getattr(self, key)
        extra: dict[str, Any] = getattr(self, "extra", {})
        if key in extra:
            return extra[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = [v.to_dict() if isinstance(v, _Mapping) else v for v in value]
            out[f.name] = value
        out.update(getattr(self, "extra", {}))
        return out


_MISSING = object()


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _extra(data: dict[str, Any], known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


@dataclass(frozen=True)
class Participant(_Mapping):
    id: str
    identity: str = ""
    role: str = ""
    name: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    joined_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Participant:
        attributes = data.get("attributes")
        joined_at = data.get("joined_at")
        return cls(
            id=_str(data.get("id")),
            identity=_str(data.get("identity")),
            role=_str(data.get("role")),
            name=_str(data.get("name")),
            attributes=dict(attributes) if isinstance(attributes, dict) else {},
            joined_at=joined_at if isinstance(joined_at, str) else None,
            extra=_extra(data, {"id", "identity", "role", "name", "attributes", "joined_at"}),
        )


@dataclass(frozen=True)
class ToolInfo(_Mapping):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ToolInfo:
        input_schema = data.get("input_schema")
        output_schema = data.get("output_schema")
        return cls(
            name=_str(data.get("name")),
            description=_str(data.get("description")),
            input_schema=input_schema if isinstance(input_schema, dict) else {},
            output_schema=output_schema if isinstance(output_schema, dict) else None,
            extra=_extra(data, {"name", "description", "input_schema", "output_schema"}),
        )


@dataclass(frozen=True)
class ToolkitInfo(_Mapping):
    """A toolkit as the server describes it; `participant_id` is None for built-ins."""

    name: str
    description: str = ""
    public: bool = True
    participant_id: str | None = None
    participant_identity: str | None = None
    tools: list[ToolInfo] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def builtin(self) -> bool:
        return self.participant_id is None

    def tool(self, name: str) -> ToolInfo | None:
        return next((t for t in self.tools if t.name == name), None)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ToolkitInfo:
        tools = data.get("tools")
        pid = data.get("participant_id")
        pidentity = data.get("participant_identity")
        return cls(
            name=_str(data.get("name")),
            description=_str(data.get("description")),
            public=bool(data.get("public", True)),
            participant_id=pid if isinstance(pid, str) else None,
            participant_identity=pidentity if isinstance(pidentity, str) else None,
            tools=[ToolInfo.from_wire(t) for t in tools if isinstance(t, dict)] if isinstance(tools, list) else [],
            extra=_extra(
                data,
                {"name", "description", "public", "participant_id", "participant_identity", "tools"},
            ),
        )


@dataclass(frozen=True)
class RoomInfo(_Mapping):
    name: str
    project: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RoomInfo:
        return cls(
            name=_str(data.get("name")),
            project=_str(data.get("project")),
            extra=_extra(data, {"name", "project"}),
        )


@dataclass(frozen=True)
class Event:
    """A notification from the server, or a synthetic local one (`connection.lost`, ...)."""

    method: str
    params: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}
