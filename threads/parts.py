"""Content parts of a thread message, validated before they are stored."""

from typing import Any

from meshsite.errors import invalid_params

MAX_PARTS = 64
TOOL_CALL_STATUSES = ("pending", "awaiting_approval", "running", "ok", "error", "refused", "cancelled")

PART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "oneOf": [
        {
            "properties": {"type": {"const": "text"}, "text": {"type": "string", "maxLength": 100_000}},
            "required": ["text"],
        },
        {
            "properties": {
                "type": {"const": "attachment"},
                "path": {"type": "string", "maxLength": 1000},
                "name": {"type": "string", "maxLength": 300},
                "mime_type": {"type": "string", "maxLength": 200},
                "size": {"type": "integer", "minimum": 0},
            },
            "required": ["path"],
        },
        {
            "properties": {
                "type": {"const": "tool_call"},
                "call_id": {"type": "string", "maxLength": 64},
                "toolkit": {"type": "string", "maxLength": 64},
                "tool": {"type": "string", "maxLength": 64},
                "arguments": {},
                "status": {"enum": list(TOOL_CALL_STATUSES)},
                "progress": {},
                "result": {},
                "error": {},
                "approved_by": {"type": ["string", "null"]},
                "refused_by": {"type": ["string", "null"]},
            },
            "required": ["call_id", "toolkit", "tool", "status"],
        },
    ],
}
PARTS_SCHEMA: dict[str, Any] = {"type": "array", "items": PART_SCHEMA, "minItems": 1, "maxItems": MAX_PARTS}


def parts_from(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """`parts`, or a plain `text` as one text part."""
    parts = arguments.get("parts")
    text = arguments.get("text")
    if parts is None and text is None:
        raise invalid_params("give `text` or `parts`")
    if parts is not None and text is not None:
        raise invalid_params("give `text` or `parts`, not both")
    return parts if parts is not None else [{"type": "text", "text": text}]
