"""Protocol v1's wire contract, shared by the server and every Python client. Django-free.

Error codes, close codes, name patterns, trace context, and the one way frames are encoded and
decoded. `docs/protocol.md` documents these tables and a test checks it against this module;
`static/meshsite/room.js` carries the same tables for browsers.
"""

from __future__ import annotations

import json
import math
import re
from enum import IntEnum
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # the client does not require it (the `fast` extra); the server does
    _orjson = None  # type: ignore[assignment]

PROTOCOL_VERSION = 1

# Nesting deeper than this is refused at parse (-32600): no tool needs it, and deep structures
# cost recursion everywhere they travel (validation, re-encoding, the database).
MAX_JSON_DEPTH = 64


class ErrorCode(IntEnum):
    """JSON-RPC error codes (docs/protocol.md, "Errors"). Never renumber them."""

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
        """The `data.type` string clients switch on."""
        return self.name.lower()


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (docs/protocol.md, "Close codes")."""

    NORMAL = 1000
    FRAME_TOO_LARGE = 1009
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    TOKEN_EXPIRED = 4408
    REPLACED = 4409
    SLOW_READER = 4413
    RATE_LIMITED = 4429
    # WebSocket stacks let a server send only 1000 and 3000-4999 itself, hence 45xx, not 1011/1001.
    INTERNAL_ERROR = 4500
    GOING_AWAY = 4503


# Toolkit names carry no dot, so a grant pattern `a.b` always means toolkit `a`, tool `b`.
TOOLKIT_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")
TOOL_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$")
ROOM_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# W3C Trace Context: any version but ff; version 00 has exactly these four fields.
TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: object) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid traceparent, else None."""
    if not isinstance(value, str):
        return None
    match = TRACEPARENT_RE.match(value)
    if match is None or match.group(1) == "ff":
        return None
    trace_id, span_id = match.group(2), match.group(3)
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id, match.group(4)


class FrameError(ValueError):
    """A frame that cannot be accepted; `code` and `message` are its JSON-RPC error."""

    def __init__(self, code: ErrorCode, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def _refuse_constant(name: str) -> Any:
    raise FrameError(ErrorCode.INVALID_PARAMS, f"{name} is not a JSON number; send finite numbers only")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise FrameError(ErrorCode.INVALID_PARAMS, f"the number {literal[:40]} is out of range")
    return value


# Built once: json.loads/json.dumps with options build a new decoder/encoder on every call, which
# costs more than parsing or encoding a typical frame. Both hold no state between calls.
_FRAME_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_FRAME_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# orjson, where installed, parses and encodes frames several times faster than `json` (a quarter
# of the server's JSON time per routed call). It reads integers beyond 64 bits as floats: a frame
# with a run of 19 digits anywhere goes to `json`, which keeps them exact. Types it does not take
# as `json` does (str subclasses, dataclasses, dates) raise instead, and `json` decides.
_LONG_DIGITS_RE = re.compile(r"[0-9]{19}")
_ORJSON_AS_JSON = (
    (_orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATACLASS | _orjson.OPT_PASSTHROUGH_DATETIME)
    if _orjson is not None
    else 0
)

# \ud800-\udfff: high and low halves both (a low one alone is as unencodable as a high one)
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def decode_frame(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parses one text frame, refusing what is not portable JSON.

    Raises FrameError: -32700 for text that is not JSON, -32600 for nesting deeper than
    `max_depth`, -32602 (with the request id when it can be read) for NaN/Infinity, numbers out
    of range and lone UTF-16 surrogates, which browsers, Postgres and the Redis bus all reject.
    """
    try:
        if isinstance(text, str):
            message = _decode_text(text)
        else:  # bytes: json.loads detects their encoding
            message = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except FrameError as error:
        error.request_id = _request_id_of(text)
        raise
    except RecursionError:
        raise FrameError(ErrorCode.INVALID_REQUEST, f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:
        raise FrameError(ErrorCode.PARSE_ERROR, "the frame is not valid JSON") from None
    # Counting brackets is C-speed; only a frame with more of them than the limit is walked.
    if text.count("[") + text.count("{") > max_depth and json_depth_exceeds(message, max_depth):
        raise FrameError(
            ErrorCode.INVALID_REQUEST, f"JSON nested deeper than {max_depth} levels", _top_level_id(message)
        )
    if _SURROGATE_ESCAPE_RE.search(text) and has_lone_surrogate(message):
        raise FrameError(
            ErrorCode.INVALID_PARAMS, "the frame contains a lone UTF-16 surrogate (not text)", _top_level_id(message)
        )
    return message


def _decode_text(text: str) -> Any:
    if _orjson is None or _LONG_DIGITS_RE.search(text):
        return _FRAME_DECODER.decode(text)
    try:
        return _orjson.loads(text)
    except _orjson.JSONDecodeError:
        # `json` parses it again and refuses it too, saying why with the code the protocol gives
        return _FRAME_DECODER.decode(text)


def _top_level_id(message: Any) -> Any:
    if isinstance(message, dict):
        request_id = message.get("id")
        if isinstance(request_id, str | int) and not isinstance(request_id, bool):
            return request_id
    return None


def _request_id_of(text: str) -> Any:
    """The id of a frame refused for its numbers, read leniently so the error can answer it."""
    try:
        return _top_level_id(json.loads(text))
    except (ValueError, RecursionError):
        return None


def json_depth_exceeds(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def contains_nul(value: Any) -> bool:
    """True if any string (key or value) holds U+0000, which Postgres text and JSONB refuse."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def encode_frame(message: Any) -> str:
    """The one encoding of outgoing frames: UTF-8 text as is (escaping would triple its size),
    no NaN/Infinity, no padding."""
    return _FRAME_ENCODER.encode(message)


def encode_decoded(message: Any) -> str:
    """`encode_frame` for a message whose every number came from a decoded frame, so none is NaN or
    infinite (orjson writes those as null where `encode_frame` refuses them): the server's
    relaying of calls and answers."""
    if _orjson is None:
        return _FRAME_ENCODER.encode(message)
    try:
        return _orjson.dumps(message, option=_ORJSON_AS_JSON).decode()
    except TypeError:
        # not JSON to orjson (an integer beyond 64 bits, a key that is not a string…): `json`
        # encodes it, or refuses what is not JSON at all
        return _FRAME_ENCODER.encode(message)


def utf8_size(text: str) -> int:
    """Bytes of `text` on the wire, without encoding it when it is small enough not to matter."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def error_object(code: ErrorCode, message: str, /, **data: Any) -> dict[str, Any]:
    return {"code": int(code), "message": message, "data": {"type": code.type_name, **data}}
