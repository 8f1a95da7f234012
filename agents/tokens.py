"""The participant token the server mints for an agent it runs (agent host, Celery-run Workers,
MailWorkers): one place that says what such a token vouches for."""

from typing import Any

from django.conf import settings

from rooms.models import Room
from rooms.tokens import mint_token


def agent_token(room: Room, identity: str, agent: Any, *, singleton: bool | None = None) -> str:
    """A token for `agent` (an instance of its class) to join `room` as `identity`.

    The server vouches that the holder runs agent `identity` (the `agent` claim: only the server
    and API-key holders mint tokens); its attributes only describe it, and joining with them makes
    the room know what it is from `participant.joined` on. Its display name is its title.
    `singleton=False` lets several instances of one agent share the room (one per queue message or
    email); None keeps the agent-token default, a newer connection replacing an older one."""
    token, _expires = mint_token(
        project=room.project.slug,
        room=room.name,
        identity=identity,
        role="agent",
        name=agent.title or identity,
        ttl=settings.MESHSITE_AGENT_TOKEN_TTL,
        agent=identity,
        attributes=agent.agent_attributes(),
        singleton=singleton,
    )
    return token
