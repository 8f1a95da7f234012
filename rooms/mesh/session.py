"""A live participant connection as the routing core sees it, independent of the consumer."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..grants import Grants
from .ratelimit import TokenBucket

# The ASGI scope extension under which a server offers a connection's synchronous text sender.
SEND_NOW_EXTENSION = "meshsite.send_text_now"


@dataclass(eq=False)
class Session:
    participant_id: str
    identity: str
    role: str
    name: str
    room_id: int
    room_name: str
    project_id: int
    project_slug: str
    grants: Grants
    record: dict[str, Any]
    send_text: Callable[[str], Awaitable[None]]
    close: Callable[[int, str], Awaitable[None]]
    # set by the consumer when its server sends without a coroutine (manage.py serve): Node.send
    # uses it instead of send_text, three coroutine levels fewer for every frame
    send_now: Callable[[str], None] | None = None
    # set by the consumer: verifies a fresh token and moves the session's expiry
    refresh_token: Callable[[str], Awaitable[dict[str, Any]]] | None = None
    # caller handle -> server call id, for calls this session made and that are still pending
    calls: dict[str, str] = field(default_factory=dict)
    # server call ids of calls routed to this session as host and not answered yet
    hosted: set[str] = field(default_factory=set)
    bucket: TokenBucket | None = None
    # bytes received: requests and unsolicited answers
    byte_bucket: TokenBucket | None = None
    # frames refused for the rate limit, less one for each frame allowed since (never below 0):
    # at MESHSITE_FLOOD_CLOSE_AFTER the sender keeps sending at over twice its rate, a flood
    refusals: int = 0
    closed: bool = False
    # the server vouches for it (token claim): the agent this participant runs, or ""
    agent: str = ""

    # presence (the participant list and its events) comes with the right to list participants
    sees_presence: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        self.set_grants(self.grants)

    def set_grants(self, grants: Grants) -> None:
        self.grants = grants
        self.sees_presence = grants.may_invoke("participants", "list")

    @property
    def summary(self) -> dict[str, Any]:
        return {"id": self.participant_id, "identity": self.identity, "role": self.role, "name": self.name}
