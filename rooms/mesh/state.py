"""A node's cache of one room: who is present, on which node, and the toolkits they host.

It is loaded from the database when the node's first session joins the room and then kept current
by applying room events; events that arrive while the load is in flight are replayed after it.
"""

from dataclasses import dataclass, field
from typing import Any

from toolkits.schema import ToolSpec, tools_from_records

from .session import Session


@dataclass
class HostedEntry:
    record: dict[str, Any]
    host_id: str
    tools: dict[str, ToolSpec]

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def public(self) -> bool:
        return bool(self.record["public"])


@dataclass(eq=False)
class RoomState:
    room_id: int
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    hosted: dict[tuple[str, str], HostedEntry] = field(default_factory=dict)
    public: dict[str, HostedEntry] = field(default_factory=dict)
    local: dict[str, Session] = field(default_factory=dict)
    loaded: bool = False
    joining: int = 0
    backlog: list[dict[str, Any]] = field(default_factory=list)

    def reset(
        self, participants: list[tuple[dict[str, Any], str]], toolkits: list[dict[str, Any]], local_node: str
    ) -> None:
        """Replaces the cached room with a database snapshot; local sessions are kept."""
        self.participants.clear()
        self.nodes.clear()
        self.hosted.clear()
        self.public.clear()
        for record, node in participants:
            self.add_participant(record, node)
        for session in self.local.values():
            if session.participant_id not in self.participants:
                self.add_participant(session.record, local_node)
        for toolkit in toolkits:
            self.add_toolkit(toolkit)

    def add_participant(self, record: dict[str, Any], node: str) -> None:
        self.participants[record["id"]] = record
        self.nodes[record["id"]] = node

    def add_toolkit(self, record: dict[str, Any]) -> HostedEntry:
        entry = HostedEntry(record, record["participant_id"], tools_from_records(record["tools"]))
        self.hosted[(entry.host_id, entry.name)] = entry
        if entry.public:
            self.public[entry.name] = entry
        return entry

    def remove_toolkit(self, host_id: str, name: str) -> None:
        entry = self.hosted.pop((host_id, name), None)
        if entry is not None and self.public.get(name) is entry:
            del self.public[name]

    def remove_participant(self, participant_id: str) -> None:
        self.participants.pop(participant_id, None)
        self.nodes.pop(participant_id, None)
        for host_id, name in [key for key in self.hosted if key[0] == participant_id]:
            self.remove_toolkit(host_id, name)

    def apply(self, event: dict[str, Any]) -> None:
        """Applies one room event; every event is idempotent, so a replay is harmless."""
        method, params, internal = event["method"], event["params"], event["internal"]
        if method == "participant.joined":
            self.add_participant(params["participant"], internal["node"])
        elif method == "participant.updated":
            record = params["participant"]
            if record["id"] in self.participants:
                self.participants[record["id"]] = record
        elif method == "participant.left":
            self.remove_participant(params["participant_id"])
        elif method == "toolkits.changed":
            toolkit = params["toolkit"]
            if params["action"] == "registered":
                if toolkit["participant_id"] in self.participants:
                    self.add_toolkit(toolkit)
            else:
                self.remove_toolkit(toolkit["participant_id"], toolkit["name"])

    def find_toolkit(self, name: str, host_id: str | None) -> HostedEntry | None:
        if host_id is None:
            return self.public.get(name)
        return self.hosted.get((host_id, name))
