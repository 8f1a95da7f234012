"""Python client for Meshsite rooms (protocol version 1, see docs/protocol.md)."""

from .calls import Call
from .client import RoomClient
from .context import ToolContext
from .errors import (
    AuthError,
    BudgetExceeded,
    Cancelled,
    Conflict,
    ConnectionLost,
    Disconnected,
    InternalError,
    InvalidArguments,
    InvalidParams,
    InvalidRequest,
    MeshError,
    MethodNotFound,
    NotFound,
    ParseError,
    ParticipantGone,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Replaced,
    RpcError,
    Timeout,
    ToolFailed,
    Unavailable,
)
from .events import EventStream
from .records import Event, Participant, RoomInfo, ToolInfo, ToolkitInfo
from .tokens import TokenError, mint_token
from .tools import Tool, Toolkit, tool
from .tracing import current_traceparent, is_valid_traceparent, new_traceparent

__version__ = "0.1.0"
PROTOCOL_VERSION = 1

__all__ = [
    "PROTOCOL_VERSION",
    "AuthError",
    "BudgetExceeded",
    "Call",
    "Cancelled",
    "Conflict",
    "ConnectionLost",
    "Disconnected",
    "Event",
    "EventStream",
    "InternalError",
    "InvalidArguments",
    "InvalidParams",
    "InvalidRequest",
    "MeshError",
    "MethodNotFound",
    "NotFound",
    "ParseError",
    "Participant",
    "ParticipantGone",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Replaced",
    "RoomClient",
    "RoomInfo",
    "RpcError",
    "Timeout",
    "TokenError",
    "Tool",
    "ToolContext",
    "ToolFailed",
    "ToolInfo",
    "Toolkit",
    "ToolkitInfo",
    "Unavailable",
    "__version__",
    "current_traceparent",
    "is_valid_traceparent",
    "mint_token",
    "new_traceparent",
    "tool",
]
