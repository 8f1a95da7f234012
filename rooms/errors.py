"""The protocol's error table (docs/protocol.md section 6) as one exception type.

Anything on the request path raises `MeshError`; the dispatcher turns it into a JSON-RPC error
object. Codes are part of the public contract: never renumber them.
"""

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    PERMISSION_DENIED = -32001
    NOT_FOUND = -32002
    INVALID_ARGUMENTS = -32003
    TIMEOUT = -32004
    PARTICIPANT_GONE = -32005
    PAYLOAD_TOO_LARGE = -32006
    RATE_LIMITED = -32007
    BUDGET_EXCEEDED = -32008
    TOOL_FAILED = -32009
    CONFLICT = -32010
    CANCELLED = -32011
    UNAVAILABLE = -32012

    @property
    def type_name(self) -> str:
        return self.name.lower()


class MeshError(Exception):
    def __init__(self, code: ErrorCode, message: str, /, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        return {
            "code": int(self.code),
            "message": self.message,
            "data": {"type": self.code.type_name, **self.data},
        }


def permission_denied(message: str, **data: Any) -> MeshError:
    return MeshError(ErrorCode.PERMISSION_DENIED, message, **data)


def not_found(message: str, **data: Any) -> MeshError:
    return MeshError(ErrorCode.NOT_FOUND, message, **data)


def invalid_params(message: str, **data: Any) -> MeshError:
    return MeshError(ErrorCode.INVALID_PARAMS, message, **data)
