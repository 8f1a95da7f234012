"""Exceptions raised by the client.

Two families: `RpcError` for JSON-RPC error objects the server answered with (one subclass per row
of the protocol's error table, so callers can `except NotFound:`), and `Disconnected` for the
connection itself going away.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MeshError(Exception):
    """Base class of every error this package raises on purpose."""


class RpcError(MeshError):
    """A JSON-RPC error object: `code`, `message` and the optional `data` dict."""

    code_default: ClassVar[int | None] = None
    type_name: ClassVar[str | None] = None

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data: dict[str, Any] = dict(data or {})

    @property
    def type(self) -> str | None:
        value = self.data.get("type", self.type_name)
        return value if isinstance(value, str) else None

    def __str__(self) -> str:
        detail = self.data.get("message")
        text = self.message
        # The server relays a host's own message in data.message; without it the caller would
        # only ever see the generic "tool failed".
        if isinstance(detail, str) and detail and detail not in text:
            text = f"{text}: {detail}"
        return f"{text} ({self.type or 'error'} {self.code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, data={self.data!r})"

    def to_error(self) -> dict[str, Any]:
        """The JSON-RPC error object for this exception (used when answering `tools.call`)."""
        obj: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            obj["data"] = self.data
        return obj

    @classmethod
    def from_error(cls, obj: Any) -> RpcError:
        """Build the most specific subclass for a JSON-RPC error object.

        `data.type` wins over `code` because the table says clients should switch on it and a
        relayed error may carry a code from another layer.
        """
        if not isinstance(obj, dict):
            return InternalError(-32603, f"malformed error object: {obj!r}", {"type": "internal_error"})
        raw_code = obj.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else -32603
        message = obj.get("message")
        if not isinstance(message, str) or not message:
            message = "unknown error"
        data = obj.get("data")
        data_dict: dict[str, Any] = data if isinstance(data, dict) else {}
        if data is not None and not isinstance(data, dict):
            data_dict = {"value": data}
        type_name = data_dict.get("type")
        klass = _BY_TYPE.get(type_name) if isinstance(type_name, str) else None
        if klass is None:
            klass = _BY_CODE.get(code, RpcError)
        return klass(code, message, data_dict)


class ParseError(RpcError):
    code_default = -32700
    type_name = "parse_error"


class InvalidRequest(RpcError):
    code_default = -32600
    type_name = "invalid_request"


class MethodNotFound(RpcError):
    code_default = -32601
    type_name = "method_not_found"


class InvalidParams(RpcError):
    code_default = -32602
    type_name = "invalid_params"

    @property
    def errors(self) -> list[Any]:
        value = self.data.get("errors")
        return value if isinstance(value, list) else []


class InternalError(RpcError):
    code_default = -32603
    type_name = "internal_error"


class PermissionDenied(RpcError):
    code_default = -32001
    type_name = "permission_denied"


class NotFound(RpcError):
    code_default = -32002
    type_name = "not_found"


class InvalidArguments(RpcError):
    code_default = -32003
    type_name = "invalid_arguments"

    @property
    def errors(self) -> list[Any]:
        value = self.data.get("errors")
        return value if isinstance(value, list) else []


class Timeout(RpcError, TimeoutError):
    """The call's deadline passed (also raised locally when the server never answers)."""

    code_default = -32004
    type_name = "timeout"


class ParticipantGone(RpcError):
    code_default = -32005
    type_name = "participant_gone"


class PayloadTooLarge(RpcError):
    code_default = -32006
    type_name = "payload_too_large"

    @property
    def limit(self) -> int | None:
        value = self.data.get("limit")
        return value if isinstance(value, int) else None


class RateLimited(RpcError):
    code_default = -32007
    type_name = "rate_limited"

    @property
    def retry_after(self) -> float | None:
        value = self.data.get("retry_after")
        return float(value) if isinstance(value, (int, float)) else None


class BudgetExceeded(RpcError):
    code_default = -32008
    type_name = "budget_exceeded"


class ToolFailed(RpcError):
    code_default = -32009
    type_name = "tool_failed"

    @property
    def host_error(self) -> dict[str, Any] | None:
        value = self.data.get("host_error")
        return value if isinstance(value, dict) else None


class Conflict(RpcError):
    code_default = -32010
    type_name = "conflict"


class Cancelled(RpcError):
    code_default = -32011
    type_name = "cancelled"


class Unavailable(RpcError):
    code_default = -32012
    type_name = "unavailable"


_SUBCLASSES: tuple[type[RpcError], ...] = (
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    PermissionDenied,
    NotFound,
    InvalidArguments,
    Timeout,
    ParticipantGone,
    PayloadTooLarge,
    RateLimited,
    BudgetExceeded,
    ToolFailed,
    Conflict,
    Cancelled,
    Unavailable,
)
_BY_TYPE: dict[str, type[RpcError]] = {k.type_name: k for k in _SUBCLASSES if k.type_name}
_BY_CODE: dict[int, type[RpcError]] = {k.code_default: k for k in _SUBCLASSES if k.code_default}


class Disconnected(MeshError):
    """Base of the connection-level errors; `code`/`reason` come from the close (if known)."""

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ConnectionLost(Disconnected):
    """The socket is down (or the client is closed); the request may or may not have run."""


class AuthError(Disconnected):
    """The server refused the token: close 4401 (invalid), 4403 (forbidden), 4408 (expired)."""


class Replaced(Disconnected):
    """Another connection with the same identity joined the room (close 4409)."""
