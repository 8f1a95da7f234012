"""The room WebSocket: authenticate, join, then hand every frame to the dispatcher."""

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from meshsite_client.protocol import CloseCode, encode_frame

from meshsite.errors import ErrorCode, MeshError
from rooms.timestamps import iso_z

from .actions.rooms import RoomAccessError, access_room
from .dispatcher import error_frame, handle_frame
from .mesh.node import Node, get_node
from .mesh.ratelimit import TokenBucket
from .mesh.session import SEND_NOW_EXTENSION, Session
from .tokens import TokenClaims, TokenError, verify_token

logger = logging.getLogger(__name__)
# how a connection that ended with these close codes is reported in participant.left
LEFT_REASONS: dict[int, str] = {CloseCode.SLOW_READER: "slow reader"}


def replaced_participant(scope: dict[str, Any]) -> str:
    """`?replaces=<participant id>`: a reconnecting client's previous participant id."""
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    value = query.get("replaces", [""])[0]
    return value if len(value) <= 24 else ""


def token_from_scope(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin1").partition(" ")
            if scheme.lower() == "bearer":
                return credentials.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    return query.get("token", [""])[0]


class RoomConsumer(AsyncWebsocketConsumer):
    # No per-connection channel: the node routes to sessions directly (see rooms/mesh).
    channel_layer_alias = "meshsite-no-per-connection-channel"

    node: Node | None = None
    session: Session | None = None
    claims: TokenClaims | None = None
    expiry: asyncio.TimerHandle | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Channels' loop (await_many_dispatch) wraps every frame in a new task to also listen on a
        # per-connection channel; without one, a plain loop does the same work for less.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            # However the connection ends (a close, an error, daphne cancelling the application),
            # the participant leaves: nobody must wait on a ghost.
            await asyncio.shield(self.leave("disconnected"))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections before every message, a thread hop per frame; frames
        # touch the database only through database_sync_to_async, which does that itself.
        if message["type"] == "websocket.receive":
            # Straight to receive(): websocket_receive only picks text or bytes out of the message,
            # one coroutine level more on every frame's path.
            await self.receive(message.get("text"), message.get("bytes"))
        else:
            await super().dispatch(message)

    async def connect(self) -> None:
        await self.accept()
        try:
            claims = verify_token(token_from_scope(self.scope))
        except TokenError as exc:
            await self.refuse(4401, str(exc))
            return
        try:
            room = await database_sync_to_async(access_room)(claims, self.scope["url_route"]["kwargs"]["room"])
        except RoomAccessError as exc:
            await self.refuse(4403, str(exc))
            return
        self.claims = claims
        self.node = await get_node()
        self.session = await self.node.join(
            room, claims, self.send_text, self.close_with, replaced_participant(self.scope)
        )
        self.session.refresh_token = self.refresh_token
        self.session.send_now = self.scope.get("extensions", {}).get(SEND_NOW_EXTENSION)
        self.session.bucket = TokenBucket(settings.MESHSITE_RATE_PER_SECOND, settings.MESHSITE_RATE_BURST)
        self.session.byte_bucket = TokenBucket(
            settings.MESHSITE_RATE_BYTES_PER_SECOND, settings.MESHSITE_RATE_BYTES_BURST
        )
        self.schedule_expiry(claims.expires_at)

    async def refuse(self, code: int, reason: str) -> None:
        await self.send_text(
            encode_frame({"jsonrpc": "2.0", "method": "connection.closing", "params": {"code": code, "reason": reason}})
        )
        await self.close(int(code))

    async def send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def close_with(self, code: int, reason: str) -> None:
        await self.close(int(code))  # autobahn takes a plain int, not an IntEnum

    def schedule_expiry(self, expires_at: int) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        delay = max(0.0, expires_at - time.time())
        self.expiry = asyncio.get_running_loop().call_later(delay, lambda: asyncio.ensure_future(self.expire()))

    async def expire(self) -> None:
        if self.node is not None and self.session is not None and not self.session.closed:
            await self.node.close_session(self.session, 4408, "token expired")

    async def refresh_token(self, token: str) -> dict[str, Any]:
        try:
            claims = verify_token(token)
        except TokenError as exc:
            raise MeshError(ErrorCode.PERMISSION_DENIED, str(exc)) from None
        old = self.claims
        assert old is not None and self.session is not None
        if (claims.project, claims.room, claims.identity, claims.role, claims.agent) != (
            old.project,
            old.room,
            old.identity,
            old.role,
            old.agent,
        ):
            raise MeshError(ErrorCode.PERMISSION_DENIED, "the new token is for another identity, role, agent or room")
        self.claims = claims
        self.session.set_grants(claims.grants)
        self.schedule_expiry(claims.expires_at)
        return {"token_expires_at": iso_z(claims.expires_at)}

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None or self.node is None or self.session.closed:
            return
        if text_data is None:
            await self.send_text(
                error_frame(None, MeshError(ErrorCode.INVALID_REQUEST, "binary frames are not supported"))
            )
            return
        try:
            await handle_frame(self.node, self.session, text_data)
        except Exception:
            # A frame the dispatcher could not handle gets a clean close, and the participant leaves.
            logger.exception("handling a frame from %s failed; closing the connection", self.session.participant_id)
            await self.node.close_session(self.session, CloseCode.INTERNAL_ERROR, "internal error")

    async def disconnect(self, code: int) -> None:
        await self.leave(LEFT_REASONS.get(code, "disconnected"))

    async def leave(self, reason: str) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if self.node is not None and self.session is not None and not self.session.closed:
            await self.node.leave(self.session, reason)
