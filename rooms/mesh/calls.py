"""The records of a call in flight: the caller's node holds a `PendingCall` until the call ends
exactly once; the host's node holds a `HostedCall` until the host answers."""

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from meshsite.errors import ErrorCode, MeshError
from observability.models import ToolCall
from toolkits.invocation import MAX_NAME_LENGTH
from toolkits.schema import ToolSpec

from .session import Session
from .trace import Span


@dataclass(frozen=True)
class Origin:
    """Who waits for a call's end: a client request (its call_id handle and JSON-RPC id) or, for
    calls the server makes itself, a future."""

    handle: str | None
    request_id: Any
    future: "asyncio.Future[Any] | None"


@dataclass(eq=False)
class PendingCall:
    call_id: str
    handle: str | None
    request_id: Any
    future: "asyncio.Future[Any] | None"
    caller: Session
    toolkit: str
    tool: str
    spec: ToolSpec
    host_id: str
    host_identity: str
    host_node: str
    on_behalf_of: dict[str, Any] | None
    span: Span
    timeout: float
    started: float
    t0: float
    request_bytes: int
    timer: asyncio.TimerHandle | None = None
    task: "asyncio.Task[None] | None" = None
    # for calls the server makes itself: where the host's progress goes
    on_progress: Callable[[Any], Awaitable[None]] | None = None
    # what the host said the call cost (its answer's result._meta.cost)
    cost: Decimal = Decimal(0)


@dataclass(eq=False)
class HostedCall:
    call_id: str
    host_id: str
    reply_node: str
    caller_id: str
    on_behalf_of_id: str | None


_call_numbers = itertools.count(1)
# Call ids need to be unique, not secret: who may answer a call is checked against its host.
_CALL_ID_PREFIX = "k_" + secrets.token_hex(4)


def new_call_id() -> str:
    return f"{_CALL_ID_PREFIX}{next(_call_numbers):x}"


def too_large(what: str, size: int) -> MeshError:
    limit = settings.MESHSITE_MAX_FRAME_BYTES
    return MeshError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"{what} would be a {size}-byte frame, over the {limit}-byte limit",
        limit=limit,
        size=size,
    )


def error_status(error: MeshError | None) -> str:
    if error is None:
        return ToolCall.Status.OK
    if error.code == ErrorCode.TIMEOUT:
        return ToolCall.Status.TIMEOUT
    if error.code == ErrorCode.CANCELLED:
        return ToolCall.Status.CANCELLED
    return ToolCall.Status.ERROR


def call_row(
    call: PendingCall, node_id: str, status: str, error: MeshError | None, response_bytes: int
) -> dict[str, Any]:
    """The ledger row of a call that ended."""
    caller = call.caller
    obo = call.on_behalf_of or {}
    return {
        "call_id": call.call_id,
        "project_id": caller.project_id,
        "room_id": caller.room_id,
        "room_name": caller.room_name,
        "toolkit": call.toolkit,
        "tool": call.tool,
        "caller_id": caller.participant_id,
        "caller_identity": caller.identity,
        "caller_agent": caller.agent,
        "on_behalf_of_id": obo.get("id", ""),
        "on_behalf_of_identity": obo.get("identity", ""),
        "host_id": call.host_id,
        "host_identity": call.host_identity,
        "started_at": call.started,
        "latency_ms": (time.perf_counter() - call.t0) * 1000,
        "request_bytes": call.request_bytes,
        "response_bytes": response_bytes,
        "status": status,
        "error_code": int(error.code) if error else None,
        "error_message": error.message if error else "",
        "cost": call.cost,
        "trace_id": call.span.trace_id,
        "span_id": call.span.span_id,
        "parent_span_id": call.span.parent_span_id,
        "node": node_id,
    }


def refusal_row(session: Session, params: Any, error: MeshError, size: int, node_id: str) -> dict[str, Any]:
    """The ledger row of a call refused before routing (grants, arguments, rate, size), so an
    operator sees attacks and mistakes, not only the calls that ran."""
    params = params if isinstance(params, dict) else {}
    toolkit, tool = params.get("toolkit"), params.get("tool")
    return {
        "call_id": new_call_id(),
        "project_id": session.project_id,
        "room_id": session.room_id,
        "room_name": session.room_name,
        "toolkit": toolkit[:MAX_NAME_LENGTH] if isinstance(toolkit, str) else "",
        "tool": tool[:MAX_NAME_LENGTH] if isinstance(tool, str) else "",
        "caller_id": session.participant_id,
        "caller_identity": session.identity,
        "caller_agent": session.agent,
        "on_behalf_of_id": "",
        "on_behalf_of_identity": "",
        "host_id": "",
        "host_identity": "",
        "started_at": time.time(),
        "latency_ms": 0.0,
        "request_bytes": size,
        "response_bytes": 0,
        "status": ToolCall.Status.REFUSED,
        "error_code": int(error.code),
        "error_message": error.message[:2000],
        "trace_id": "",
        "span_id": "",
        "parent_span_id": "",
        "node": node_id,
    }
