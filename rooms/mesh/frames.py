"""The frames the routing core sends, built in one place (one encoding: `encode_frame`)."""

import logging
from typing import Any

from django.conf import settings
from meshsite_client.protocol import PROTOCOL_VERSION, encode_decoded, encode_frame, utf8_size

from meshsite.errors import ErrorCode, MeshError
from meshsite.limits import LIMITS
from rooms.timestamps import iso_z

from ..tokens import TokenClaims
from .calls import PendingCall, too_large
from .session import Session

logger = logging.getLogger(__name__)
SERVER_NAME = "meshsite/0.1.0"
# Room of a ready frame around its lists (room, limits, the participant's own record).
READY_ENVELOPE_BYTES = 32 * 1024


def tools_call_frame(call: PendingCall, arguments: dict[str, Any]) -> str:
    """The request a host receives for a call routed to it. The arguments came from a frame, or
    from a built-in whose call encoded them with `encode_frame` already (Router.call)."""
    return encode_decoded(
        {
            "jsonrpc": "2.0",
            "id": call.call_id,
            "method": "tools.call",
            "params": {
                "call_id": call.call_id,
                "toolkit": call.toolkit,
                "tool": call.tool,
                "arguments": arguments,
                "caller": call.caller.summary,
                "on_behalf_of": call.on_behalf_of,
                "deadline": iso_z(call.started + call.timeout),
                "_meta": {"traceparent": call.span.traceparent},
            },
        }
    )


def progress_frame(handle: str, progress: Any) -> str:
    return encode_frame(
        {"jsonrpc": "2.0", "method": "tools.progress", "params": {"call_id": handle, "progress": progress}}
    )


def cancelled_frame(call_id: str, reason: str) -> str:
    return encode_frame(
        {"jsonrpc": "2.0", "method": "tools.cancelled", "params": {"call_id": call_id, "reason": reason}}
    )


def answer_frame(call: PendingCall, output: Any, error: MeshError | None) -> tuple[str, MeshError | None]:
    """The caller's response; an answer that cannot reach it becomes the error it gets."""
    limit = LIMITS.max_frame_bytes
    if error is None:
        # a participant's output came from its frame; a built-in's may hold what JSON cannot (NaN)
        encode = encode_decoded if call.host_id else encode_frame
        try:
            result = {"call_id": call.handle, "output": output}
            frame = encode({"jsonrpc": "2.0", "id": call.request_id, "result": result})
        except (TypeError, ValueError):
            logger.exception("%s.%s returned output that is not JSON", call.toolkit, call.tool)
            error = MeshError(ErrorCode.INTERNAL_ERROR, f"{call.toolkit}.{call.tool} returned output that is not JSON")
        else:
            if utf8_size(frame) <= limit:
                return frame, None
            error = too_large(f"the output of {call.toolkit}.{call.tool}", utf8_size(frame))
    frame = encode_frame({"jsonrpc": "2.0", "id": call.request_id, "error": error.to_error()})
    if utf8_size(frame) > limit:
        error = too_large(f"the error of {call.toolkit}.{call.tool}", utf8_size(frame))
        frame = encode_frame({"jsonrpc": "2.0", "id": call.request_id, "error": error.to_error()})
    return frame, error


def ready_frames(
    session: Session, claims: TokenClaims, participants: list[dict[str, Any]], toolkits: list[dict[str, Any]]
) -> list[str]:
    """`room.ready`, followed by `room.snapshot` frames when the room does not fit in one.

    The caller sends them with no await in between, so no room event reaches the session
    mid-snapshot."""
    params = _ready_params(session, claims)
    frame = encode_frame(
        {
            "jsonrpc": "2.0",
            "method": "room.ready",
            "params": {**params, "participants": participants, "toolkits": toolkits},
        }
    )
    if utf8_size(frame) <= settings.MESHSITE_MAX_FRAME_BYTES:
        return [frame]
    pages = _pages(
        [("participants", p) for p in participants] + [("toolkits", t) for t in toolkits],
        settings.MESHSITE_MAX_FRAME_BYTES - READY_ENVELOPE_BYTES,
    )
    frames = []
    for index, page in enumerate(pages):
        complete = index == len(pages) - 1
        if index == 0:
            message = {"jsonrpc": "2.0", "method": "room.ready", "params": {**params, **page, "complete": complete}}
        else:
            message = {"jsonrpc": "2.0", "method": "room.snapshot", "params": {**page, "complete": complete}}
        frames.append(encode_frame(message))
    return frames


def _ready_params(session: Session, claims: TokenClaims) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL_VERSION,
        "server": SERVER_NAME,
        "room": {"name": session.room_name, "project": session.project_slug},
        "participant": session.record,
        "limits": {
            "max_frame_bytes": settings.MESHSITE_MAX_FRAME_BYTES,
            "rate_per_second": settings.MESHSITE_RATE_PER_SECOND,
            "rate_burst": settings.MESHSITE_RATE_BURST,
            "default_timeout": settings.MESHSITE_DEFAULT_TIMEOUT,
            "max_timeout": settings.MESHSITE_MAX_TIMEOUT,
        },
        "token_expires_at": iso_z(claims.expires_at),
    }


def _pages(items: list[tuple[str, Any]], budget: int) -> list[dict[str, list[Any]]]:
    """Packs (list name, item) pairs into pages whose encoded size stays under `budget`."""
    pages: list[dict[str, list[Any]]] = []
    page: dict[str, list[Any]] = {"participants": [], "toolkits": []}
    used = 0
    for kind, item in items:
        size = utf8_size(encode_frame(item)) + 1
        if used and used + size > budget:
            pages.append(page)
            page, used = {"participants": [], "toolkits": []}, 0
        page[kind].append(item)
        used += size
    pages.append(page)
    return pages
