"""`participants`: who is in the room."""

from typing import Any

from meshsite.errors import not_found

from ..base import BuiltinToolkit, CallContext, builtin_tool

PARTICIPANT = {"type": "object", "required": ["id", "identity", "role"]}


class ParticipantsToolkit(BuiltinToolkit):
    name = "participants"
    description = "List the participants present in the room."

    @builtin_tool(
        description="List every participant present in the room.",
        input_schema={"type": "object", "additionalProperties": False},
        output_schema={"type": "object", "properties": {"participants": {"type": "array", "items": PARTICIPANT}}},
    )
    async def list(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        return {"participants": list(ctx.room().participants.values())}

    @builtin_tool(
        description="Get one participant by id.",
        input_schema={
            "type": "object",
            "properties": {"participant_id": {"type": "string"}},
            "required": ["participant_id"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"participant": PARTICIPANT}},
    )
    async def get(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        record = ctx.room().participants.get(arguments["participant_id"])
        if record is None:
            raise not_found(f"participant {arguments['participant_id']!r} is not in this room")
        return {"participant": record}
