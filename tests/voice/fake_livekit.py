"""A local stand-in for a LiveKit server's API, for tests: Twirp over HTTP at
`/twirp/livekit.RoomService/<Method>`, as `livekit-api`'s `LiveKitAPI` calls it.

The real client sends protobuf bodies (`Content-Type: application/protobuf`); Twirp also allows
JSON, so both are read and answered in kind. Every request must carry `Authorization: Bearer <JWT>`
signed with the API secret, issued by the API key, with the grant the method needs (CreateRoom:
`roomCreate`; ListParticipants, DeleteRoom: `roomAdmin` for that room); otherwise the Twirp error
`{"code": "unauthenticated" | "permission_denied", "msg": …}`. Rooms live in memory; participants
are whatever a test puts in `participants[room]`. No media: LiveKit's media side is not faked.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from google.protobuf import json_format
from google.protobuf.message import Message
from livekit.protocol import models as lk_models
from livekit.protocol import room as lk_room

PREFIX = "/twirp/livekit.RoomService/"
METHODS: dict[str, tuple[type[Message], str]] = {
    "CreateRoom": (lk_room.CreateRoomRequest, "roomCreate"),
    "ListParticipants": (lk_room.ListParticipantsRequest, "roomAdmin"),
    "DeleteRoom": (lk_room.DeleteRoomRequest, "roomAdmin"),
}


@dataclass
class TwirpCall:
    method: str
    content_type: str
    claims: dict[str, Any]
    request: Message | None
    status: int = 200


@dataclass
class FakeLiveKit:
    api_key: str = "APIfake"
    api_secret: str = "fake-secret-with-at-least-32-characters"
    rooms: dict[str, lk_models.Room] = field(default_factory=dict)
    participants: dict[str, list[str]] = field(default_factory=dict)
    calls: list[TwirpCall] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> FakeLiveKit:
        fake = self

        class Handler(_Handler):
            livekit = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, method: str, message: Message) -> Message:
        if isinstance(message, lk_room.CreateRoomRequest):
            room = self.rooms.get(message.name)
            if room is None:
                room = lk_models.Room(
                    sid=f"RM_{len(self.rooms) + 1}",
                    name=message.name,
                    empty_timeout=message.empty_timeout,
                    max_participants=message.max_participants,
                    creation_time=int(time.time()),
                )
                self.rooms[message.name] = room
            return room
        if isinstance(message, lk_room.ListParticipantsRequest):
            return lk_room.ListParticipantsResponse(
                participants=[lk_models.ParticipantInfo(identity=i) for i in self.participants.get(message.room, [])]
            )
        assert isinstance(message, lk_room.DeleteRoomRequest)
        self.rooms.pop(message.room, None)
        return lk_room.DeleteRoomResponse()


class _Handler(BaseHTTPRequestHandler):
    livekit: FakeLiveKit
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.livekit
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = (self.headers.get("Content-Type") or "").split(";")[0]
        method = self.path.removeprefix(PREFIX)
        call = TwirpCall(method, content_type, {}, None)
        fake.calls.append(call)
        if not self.path.startswith(PREFIX) or method not in METHODS:
            return self._error(call, 404, "bad_route", f"no handler for {self.path}")
        message_type, needed = METHODS[method]
        try:
            call.claims = jwt.decode(
                (self.headers.get("Authorization") or "").removeprefix("Bearer "),
                fake.api_secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            return self._error(call, 401, "unauthenticated", f"invalid token: {exc}")
        if call.claims.get("iss") != fake.api_key:
            return self._error(call, 401, "unauthenticated", "unknown API key")
        try:
            message = message_type()
            if content_type == "application/json":
                json_format.Parse(body or b"{}", message)
            else:
                message.ParseFromString(body)
        except Exception as exc:
            return self._error(call, 400, "malformed", f"could not decode the request: {exc}")
        call.request = message
        video = call.claims.get("video") or {}
        room = getattr(message, "room", None)
        if not video.get(needed) or (needed == "roomAdmin" and video.get("room") != room):
            return self._error(call, 403, "permission_denied", f"{method} needs the {needed} grant")
        reply = fake.handle(method, message)
        if content_type == "application/json":
            data, reply_type = json_format.MessageToJson(reply).encode(), "application/json"
        else:
            data, reply_type = reply.SerializeToString(), "application/protobuf"
        self._send(200, reply_type, data)

    def _error(self, call: TwirpCall, status: int, code: str, msg: str) -> None:
        call.status = status
        self._send(status, "application/json", json.dumps({"code": code, "msg": msg}).encode())

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
