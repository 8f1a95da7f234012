"""Running a MailWorker for one inbound message: the service's agent class joins the message's
room as a participant (over the room WebSocket, like any agent), `handle_email` composes the
reply, and the agent leaves."""

import asyncio
from dataclasses import dataclass
from typing import Any

from agents.introspection import import_agent_class
from agents.models import Service
from agents.tokens import agent_token
from agents.worker_runtime import web_url

from .models import InboundMessage


@dataclass
class AgentAnswer:
    text: str | None  # None: the agent chose not to reply
    attachments: list[str]
    author: dict[str, Any]  # the agent as a thread message author


def _instantiate(service: Service) -> Any:
    agent_class = import_agent_class(service.class_path)
    options = {**service.config, "name": service.name}
    for key in ("title", "description"):
        if getattr(service, key):
            options[key] = getattr(service, key)
    return agent_class(**options)


def ws_url(room_name: str) -> str:
    # the web node Workers reach (MESHSITE_WORKER_URL, else the public URL, else this process's
    # own server on the embedded default)
    return f"{web_url()}/rooms/{room_name}/ws"


def run_mail_worker(inbound: InboundMessage) -> AgentAnswer:
    """Runs the inbound message's MailWorker to completion (blocking; called from a task)."""
    assert inbound.mailbox is not None
    service = inbound.mailbox.service
    agent = _instantiate(service)
    room = inbound.room

    # several messages of one room may be answered at once, by one instance each
    def token() -> str:
        return agent_token(room, service.name, agent, singleton=False)

    return asyncio.run(_serve(agent, ws_url(room.name), token, inbound.to_record()))


async def _serve(agent: Any, url: str, token: Any, email: dict[str, Any]) -> AgentAnswer:
    from meshsite_client import RoomClient

    room = RoomClient(url, token)
    await room.connect()
    try:
        await agent.start(room)
        author = {
            "id": room.participant.id,
            "identity": room.participant.identity,
            "role": "agent",
            "name": agent.title or agent.name,
        }
        try:
            reply = await agent.handle_email(email)
        finally:
            await asyncio.shield(agent.stop(drain=True, timeout=30))
    finally:
        await asyncio.shield(room.close())
    if reply is None:
        return AgentAnswer(None, [], author)
    return AgentAnswer(str(reply.text), [str(path) for path in reply.attachments], author)
