"""The client's picture of the room, kept current from notifications."""

from __future__ import annotations

from typing import Any

from .records import Participant, RoomInfo, ToolkitInfo


class RoomState:
    def __init__(self) -> None:
        self.participant: Participant | None = None
        self.participants: dict[str, Participant] = {}
        self.toolkits: list[ToolkitInfo] = []
        self.room: RoomInfo | None = None
        self.limits: dict[str, Any] = {}
        self.protocol: int | None = None
        self.server: str | None = None
        self.token_expires_at: str | None = None
        self.ready: dict[str, Any] = {}

    def load_ready(self, params: dict[str, Any]) -> None:
        """Replace everything from a `room.ready` (a reconnect gets a new participant id)."""
        self.ready = dict(params)
        me = params.get("participant")
        self.participant = Participant.from_wire(me) if isinstance(me, dict) else None
        self.participants = {}
        for item in params.get("participants") or []:
            if isinstance(item, dict):
                p = Participant.from_wire(item)
                self.participants[p.id] = p
        if self.participant is not None:
            self.participants[self.participant.id] = self.participant
        self.toolkits = [ToolkitInfo.from_wire(t) for t in params.get("toolkits") or [] if isinstance(t, dict)]
        room = params.get("room")
        self.room = RoomInfo.from_wire(room) if isinstance(room, dict) else None
        limits = params.get("limits")
        self.limits = dict(limits) if isinstance(limits, dict) else {}
        protocol = params.get("protocol")
        self.protocol = protocol if isinstance(protocol, int) else None
        server = params.get("server")
        self.server = server if isinstance(server, str) else None
        expires = params.get("token_expires_at")
        self.token_expires_at = expires if isinstance(expires, str) else None

    def apply(self, method: str, params: dict[str, Any]) -> None:
        if method in ("participant.joined", "participant.updated"):
            data = params.get("participant")
            if isinstance(data, dict):
                self.set_participant(Participant.from_wire(data))
        elif method == "participant.left":
            pid = params.get("participant_id")
            if isinstance(pid, str):
                self.participants.pop(pid, None)
                # The server unregisters a leaver's toolkits; drop them even if the matching
                # toolkits.changed notifications are not sent or arrive later.
                self.toolkits = [t for t in self.toolkits if t.participant_id != pid]
        elif method == "toolkits.changed":
            data = params.get("toolkit")
            if not isinstance(data, dict):
                return
            if params.get("action") == "registered":
                self.add_toolkit(ToolkitInfo.from_wire(data))
            elif params.get("action") == "unregistered":
                name = data.get("name")
                self.remove_toolkit(name if isinstance(name, str) else "", data.get("participant_id"))

    def set_participant(self, participant: Participant) -> None:
        self.participants[participant.id] = participant
        if self.participant is not None and participant.id == self.participant.id:
            self.participant = participant

    def add_toolkit(self, toolkit: ToolkitInfo) -> None:
        self.remove_toolkit(toolkit.name, toolkit.participant_id)
        self.toolkits.append(toolkit)

    def remove_toolkit(self, name: str, participant_id: Any) -> None:
        self.toolkits = [t for t in self.toolkits if not (t.name == name and t.participant_id == participant_id)]

    def default_timeout(self) -> float:
        value = self.limits.get("default_timeout")
        return float(value) if isinstance(value, (int, float)) and value > 0 else 60.0
