"""Starting a voice conversation: check who asks, create the LiveKit room, dispatch the VoiceBot."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp
from asgiref.sync import async_to_sync
from livekit.api import TwirpError

from agents.actions import do_dispatch
from meshsite.errors import MeshError
from rooms.actions.rooms import do_create_room
from rooms.models import Participant, Project
from threads.models import Thread

from .livekit_server import Grant, access_token, ensure_room
from .models import LiveKitConfig


class VoiceStartError(Exception):
    """A voice conversation cannot start; `status` is the HTTP status, the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class VoiceSession:
    url: str
    person: Grant
    dispatch_id: int
    thread_id: str | None


def access_livekit(project: Project) -> LiveKitConfig:
    config = LiveKitConfig.objects.filter(project=project, enabled=True).first()
    if config is None:
        raise VoiceStartError(
            409, "No LiveKit server is configured for this project: add one in the admin (Voice → LiveKit servers)."
        )
    return config


def check_asker(project: Project, room: str, identity: str, participant_id: Any, thread_id: Any) -> dict[str, Any]:
    """The person's live participant in the Meshsite room (its `ui` toolkit gets the approvals),
    which must be this user's own; and the thread, which must be in this room."""
    if not isinstance(participant_id, str) or not participant_id:
        raise VoiceStartError(400, "participant_id is required: the Studio page's own participant id")
    participant = (
        Participant.objects.present().filter(id=participant_id, room__project=project, room__name=room).first()
    )
    if participant is None or participant.identity != identity:
        raise VoiceStartError(400, "participant_id is not your participant in this room")
    if thread_id is not None and (
        not isinstance(thread_id, str) or not Thread.objects.filter(id=thread_id, room=participant.room).exists()
    ):
        raise VoiceStartError(400, "thread_id is not a thread of this room")
    return {"participant_id": participant.id, "identity": participant.identity, "role": participant.role}


def do_start_voice(
    project: Project, room_name: str, *, identity: str, name: str, participant_id: Any, thread_id: Any
) -> VoiceSession:
    """Creates a LiveKit room for this conversation, mints the person's and the bot's access tokens
    and dispatches the VoiceBot service into the Meshsite room with the bot's."""
    config = access_livekit(project)
    asker = check_asker(project, room_name, identity, participant_id, thread_id)
    livekit_room = f"{project.slug}--{room_name}--{secrets.token_hex(4)}"
    try:
        async_to_sync(ensure_room)(config, livekit_room)
    except TwirpError as exc:
        raise VoiceStartError(502, f"The LiveKit server refused to create the room: {exc.message}") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise VoiceStartError(502, f"The LiveKit server at {config.url} could not be reached: {exc}") from exc
    person = access_token(config, room=livekit_room, identity=identity, name=name, kind="person")
    bot = access_token(config, room=livekit_room, identity=config.voicebot_service, name="VoiceBot", kind="agent")
    room = do_create_room(project, room_name)
    arguments = {
        "livekit_url": config.url,
        "livekit_room": livekit_room,
        "livekit_token": bot.token,
        "thread_id": thread_id,
        "asker": asker,
    }
    try:
        dispatch, created = do_dispatch(room, config.voicebot_service, arguments, requested_by=identity)
    except MeshError as exc:
        raise VoiceStartError(409, f"The VoiceBot cannot be started: {exc.message}") from exc
    if not created:
        raise VoiceStartError(
            409,
            f"A {config.voicebot_service} is already in this room: stop it first, or let its service run several.",
        )
    return VoiceSession(config.url, person, dispatch.pk, thread_id)
