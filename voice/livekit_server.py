"""LiveKit through `livekit-api`: access tokens with the grants each side needs, and the server API
(Twirp) calls a voice conversation makes: create the room, list who is in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from livekit import api

from .models import LiveKitConfig

# Each side may join the one room, publish its microphone and hear the other: no data channel,
# no camera or screen, no room administration.
AUDIO_ONLY = ["microphone"]


@dataclass(frozen=True)
class Grant:
    token: str
    identity: str
    room: str
    ttl: int


def access_token(config: LiveKitConfig, *, room: str, identity: str, name: str, kind: str) -> Grant:
    """A LiveKit access token for one participant of one room. `kind` is `person` (the browser) or
    `agent` (the VoiceBot); both may publish only microphone audio and subscribe."""
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_publish_sources=AUDIO_ONLY,
        can_subscribe=True,
        can_publish_data=False,
        can_update_own_metadata=False,
    )
    token = (
        api.AccessToken(config.api_key, config.api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_kind("agent" if kind == "agent" else "standard")
        .with_ttl(timedelta(seconds=config.token_ttl))
        .with_grants(grants)
        .to_jwt()
    )
    return Grant(token, identity, room, config.token_ttl)


def client(config: LiveKitConfig) -> api.LiveKitAPI:
    return api.LiveKitAPI(config.api_url, config.api_key, config.api_secret)


async def ensure_room(config: LiveKitConfig, name: str, *, empty_timeout: int = 300, max_participants: int = 4) -> str:
    """Creates the LiveKit room (CreateRoom returns the existing one when it is there): a room that
    stays empty `empty_timeout` seconds is closed by the server. Returns its sid."""
    async with client(config) as lk:
        room = await lk.room.create_room(
            api.CreateRoomRequest(name=name, empty_timeout=empty_timeout, max_participants=max_participants)
        )
    return str(room.sid)


async def participants(config: LiveKitConfig, room: str) -> list[str]:
    async with client(config) as lk:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return [p.identity for p in listed.participants]
