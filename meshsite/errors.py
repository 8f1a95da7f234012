"""The protocol's error table as one exception type.

Anything on the request path raises `MeshError`; the dispatcher turns it into a JSON-RPC error
object. The codes live in the shared protocol module (`meshsite_client.protocol`), so server and
clients cannot disagree on them.
"""

from typing import Any

from meshsite_client.protocol import ErrorCode, error_object

__all__ = ["ErrorCode", "MeshError", "invalid_params", "not_found", "permission_denied"]


class MeshError(Exception):
    def __init__(self, code: ErrorCode, message: str, /, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        return error_object(self.code, self.message, **self.data)


def permission_denied(message: str, **data: Any) -> MeshError:
    return MeshError(ErrorCode.PERMISSION_DENIED, message, **data)


def not_found(message: str, **data: Any) -> MeshError:
    return MeshError(ErrorCode.NOT_FOUND, message, **data)


def invalid_params(message: str, **data: Any) -> MeshError:
    return MeshError(ErrorCode.INVALID_PARAMS, message, **data)
