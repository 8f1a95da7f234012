"""Turns one incoming text frame into a handler call and exactly one response (for requests)."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from meshsite_client.protocol import FrameError, contains_nul, decode_frame, encode_frame

from meshsite.errors import ErrorCode, MeshError, invalid_params, not_found
from rooms.timestamps import iso_z
from toolkits.schema import parse_toolkit_definition

from .actions.participants import do_set_attributes
from .actions.toolkits import do_register_toolkit, do_unregister_toolkit
from .events import run_action
from .mesh.node import Node
from .mesh.session import Session

logger = logging.getLogger(__name__)

# A handler answers with a result, or with ANSWERED_LATER when it will respond itself.
ANSWERED_LATER = object()
Handler = Callable[[Node, Session, dict[str, Any], Any, int], Awaitable[Any]]


def error_frame(request_id: Any, error: MeshError) -> str:
    return encode_frame({"jsonrpc": "2.0", "id": request_id, "error": error.to_error()})


async def handle_frame(node: Node, session: Session, text: str) -> None:
    """Answers every request exactly once (or closes the connection); see docs/protocol.md."""
    try:
        message = decode_frame(text)
    except FrameError as refused:
        if not await _within_rate_limit(node, session, None, len(text)):
            return
        await node.send(session, error_frame(refused.request_id, MeshError(refused.code, refused.message)))
        return
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        if await _within_rate_limit(node, session, None, len(text)):
            error = MeshError(ErrorCode.INVALID_REQUEST, "expected one JSON-RPC 2.0 object")
            await node.send(session, error_frame(None, error))
        return
    method = message.get("method")
    request_id = message.get("id")
    if method is None and ("result" in message or "error" in message):
        # Answers the server asked for are not limited; unsolicited ones count like requests.
        if node.router.is_hosting(session, request_id) or await _within_rate_limit(node, session, None, len(text)):
            await node.router.on_host_response(session, message)
        return
    wait = _rate_wait(session, len(text))  # not a coroutine: every request passes here
    if wait:
        await _refuse_for_rate(node, session, request_id if "id" in message else None, wait)
        if method == "tools.invoke":
            node.router.record_refusal(
                session, message.get("params"), MeshError(ErrorCode.RATE_LIMITED, "rate limited")
            )
        return
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, str | int)):
        await node.send(
            session, error_frame(None, MeshError(ErrorCode.INVALID_REQUEST, "id must be a string or an integer"))
        )
        return
    is_request = "id" in message
    if not isinstance(method, str):
        if is_request:
            await node.send(
                session, error_frame(request_id, MeshError(ErrorCode.INVALID_REQUEST, "method must be a string"))
            )
        return
    params = message.get("params", {})
    if params is None:
        params = {}
    handler = (HANDLERS if is_request else NOTIFICATION_HANDLERS).get(method)
    try:
        if handler is None:
            raise MeshError(ErrorCode.METHOD_NOT_FOUND, f"unknown method {method[:100]!r}")
        if not isinstance(params, dict):
            raise invalid_params("params must be an object")
        result = await handler(node, session, params, request_id, len(text))
    except MeshError as error:
        if is_request:
            await node.send(session, error_frame(request_id, error))
        return
    except Exception:
        logger.exception("handling %s failed", method)
        if is_request:
            await node.send(session, error_frame(request_id, MeshError(ErrorCode.INTERNAL_ERROR, "internal error")))
        return
    if is_request and result is not ANSWERED_LATER:
        await node.send(session, encode_frame({"jsonrpc": "2.0", "id": request_id, "result": result}))


async def _within_rate_limit(node: Node, session: Session, request_id: Any, size: int) -> bool:
    wait = _rate_wait(session, size)
    if not wait:
        return True
    await _refuse_for_rate(node, session, request_id, wait)
    return False


def _rate_wait(session: Session, size: int) -> float:
    """0 when the session may send this frame now, else the seconds until it may."""
    wait = session.bucket.take() if session.bucket is not None else 0.0
    if not wait and session.byte_bucket is not None:
        wait = session.byte_bucket.take(size)
    if not wait and session.refusals:
        # An allowed frame offsets one refusal rather than forgetting them all: a flood keeps
        # getting a token every 1/rate seconds, and forgetting at each one left the close to how
        # many frames the node happened to read in between (with 64 kB frames, 30 to 46 on one
        # machine: never the 50 a test allowed).
        session.refusals -= 1
    return wait


async def _refuse_for_rate(node: Node, session: Session, request_id: Any, wait: float) -> None:
    session.refusals += 1
    if session.refusals >= settings.MESHSITE_FLOOD_CLOSE_AFTER:
        await node.close_session(session, 4429, "rate limit exceeded repeatedly")
    elif request_id is not None:
        error = MeshError(ErrorCode.RATE_LIMITED, "rate limit exceeded", retry_after=round(wait, 3))
        await node.send(session, error_frame(request_id, error))


async def tools_invoke(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    try:
        await node.router.invoke(session, request_id, params, size)
    except MeshError as refused:
        node.router.record_refusal(session, params, refused, size)
        raise
    return ANSWERED_LATER


async def tools_cancel(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    return await node.router.cancel(session, params)


async def toolkits_register(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    definition = parse_toolkit_definition(params)
    session.grants.check_register(definition.name)
    record = await run_action(do_register_toolkit, session.participant_id, definition)
    # Apply to this node's cache now: the caller may invoke it before the event comes back.
    node.rooms[session.room_id].add_toolkit(record)
    return {"toolkit": record}


async def toolkits_unregister(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    name = params.get("name")
    if not isinstance(name, str):
        raise invalid_params("name must be a string")
    await run_action(do_unregister_toolkit, session.participant_id, name)
    node.rooms[session.room_id].remove_toolkit(session.participant_id, name)
    return {"unregistered": True}


async def toolkits_list(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    host_id = params.get("participant_id")
    if host_id is not None:
        if not isinstance(host_id, str):
            raise invalid_params("participant_id must be a string")
        if host_id not in node.rooms[session.room_id].participants:
            raise not_found(f"participant {host_id!r} is not in this room")
    return {"toolkits": node.visible_toolkits(session, host_id)}


async def set_attributes(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    attributes = params.get("attributes")
    if not isinstance(attributes, dict):
        raise invalid_params("attributes must be an object")
    if contains_nul(attributes):
        raise invalid_params("attributes may not contain the NUL character (U+0000)")
    record = await run_action(
        do_set_attributes, session.participant_id, attributes, settings.MESHSITE_MAX_ATTRIBUTES_BYTES
    )
    session.record = record
    node.rooms[session.room_id].participants[session.participant_id] = record
    return {"participant": record}


async def ping(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    from datetime import UTC, datetime

    return {"pong": True, "time": iso_z(datetime.now(UTC))}


async def tools_progress(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    await node.router.on_host_progress(session, params)
    return None


async def refresh_token(node: Node, session: Session, params: dict[str, Any], request_id: Any, size: int) -> Any:
    token = params.get("token")
    if not isinstance(token, str) or session.refresh_token is None:
        raise invalid_params("token must be a string")
    return await session.refresh_token(token)


HANDLERS: dict[str, Handler] = {
    "connection.refresh_token": refresh_token,
    "tools.invoke": tools_invoke,
    "tools.cancel": tools_cancel,
    "toolkits.register": toolkits_register,
    "toolkits.unregister": toolkits_unregister,
    "toolkits.list": toolkits_list,
    "participant.set_attributes": set_attributes,
    "ping": ping,
}
NOTIFICATION_HANDLERS: dict[str, Handler] = {"tools.progress": tools_progress}
