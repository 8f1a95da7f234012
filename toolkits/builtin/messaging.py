"""`messaging`: send a message to one participant or to everyone in the room."""

from typing import Any

from django.conf import settings
from meshsite_client.protocol import encode_frame, utf8_size

from meshsite.errors import ErrorCode, MeshError, not_found

from ..base import BuiltinToolkit, CallContext, builtin_tool

MESSAGE_TYPE = {"type": "string", "minLength": 1, "maxLength": 100}


class MessagingToolkit(BuiltinToolkit):
    name = "messaging"
    description = "Send messages to one participant or to everyone in the room."

    @builtin_tool(
        description="Send a message to one participant.",
        input_schema={
            "type": "object",
            "properties": {"to": {"type": "string"}, "type": MESSAGE_TYPE, "message": {}},
            "required": ["to", "type", "message"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"delivered": {"type": "boolean"}}},
    )
    async def send(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        ctx.caller.grants.check_flag("messaging", "send messages")
        caller = ctx.caller
        frame = encode_frame(
            {
                "jsonrpc": "2.0",
                "method": "messaging.message",
                "params": {
                    "from": caller.summary,
                    "to": arguments["to"],
                    "type": arguments["type"],
                    "message": arguments["message"],
                },
            }
        )
        check_deliverable(frame)
        if arguments["to"] not in ctx.room().participants:
            raise not_found(f"participant {arguments['to']!r} is not in this room")
        if not await ctx.notify(arguments["to"], frame):
            raise MeshError(ErrorCode.PARTICIPANT_GONE, "the participant left before the message arrived")
        return {"delivered": True}

    @builtin_tool(
        description="Send a message to everyone else in the room.",
        input_schema={
            "type": "object",
            "properties": {"type": MESSAGE_TYPE, "message": {}},
            "required": ["type", "message"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"delivered": {"type": "integer"}}},
    )
    async def broadcast(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        ctx.caller.grants.check_flag("messaging", "send messages")
        caller = ctx.caller
        params = {"from": caller.summary, "to": None, "type": arguments["type"], "message": arguments["message"]}
        check_deliverable(encode_frame({"jsonrpc": "2.0", "method": "messaging.message", "params": params}))
        await ctx.broadcast("messaging.message", params)
        return {"delivered": len(ctx.room().participants) - 1}


def check_deliverable(frame: str) -> None:
    """A message its recipients' connections would refuse is an error to its sender, not a
    `delivered` that never arrives."""
    size = utf8_size(frame)
    if size > settings.MESHSITE_MAX_FRAME_BYTES:
        raise MeshError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"the message would be a {size}-byte frame, over the {settings.MESHSITE_MAX_FRAME_BYTES}-byte limit",
            limit=settings.MESHSITE_MAX_FRAME_BYTES,
        )
