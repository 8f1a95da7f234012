"""`usage`: participants (agents, mostly) report what they consumed; the server attributes it.

Who consumed (participant, identity, vouched agent), where (project, room) and in which trace come
from the call, never from the arguments; the reporter says what (kind, model, amounts) and why
(thread, turn). Prices and budgets apply to these records (docs/protocol.md).
"""

from typing import Any

from asgiref.sync import sync_to_async

from meshsite.errors import invalid_params
from toolkits.base import BuiltinToolkit, CallContext, builtin_tool

from .models import UsageRecord

TOKENS = {"type": "integer", "minimum": 0, "maximum": 100_000_000}


def _record(ctx: CallContext, arguments: dict[str, Any], agent: str, trace_id: str) -> dict[str, Any]:
    record = UsageRecord.objects.create(
        project_id=ctx.caller.project_id,
        room_id=ctx.caller.room_id,
        room_name=ctx.caller.room_name,
        participant_id=ctx.caller.participant_id,
        identity=ctx.caller.identity,
        agent=agent,
        kind=arguments["kind"],
        model=arguments["model"],
        input_tokens=arguments.get("input_tokens", 0),
        output_tokens=arguments.get("output_tokens", 0),
        cached_tokens=arguments.get("cached_tokens", 0),
        quantity=arguments.get("quantity", 0),
        thread_id=arguments.get("thread_id", ""),
        turn_id=arguments.get("turn_id", ""),
        trace_id=trace_id,
        span_id=ctx.call_id[-16:],
        metadata=arguments.get("metadata", {}),
    )
    return record.to_record()


class UsageToolkit(BuiltinToolkit):
    name = "usage"
    description = "Report metered usage (LLM tokens, embeddings, speech, email) for cost and budgets."

    @builtin_tool(
        description="Record one usage: what was consumed, by which model, for which thread and turn.",
        input_schema={
            "type": "object",
            "properties": {
                "kind": {"enum": [choice.value for choice in UsageRecord.Kind]},
                "model": {"type": "string", "minLength": 1, "maxLength": 200},
                "input_tokens": TOKENS,
                "output_tokens": TOKENS,
                "cached_tokens": TOKENS,
                "quantity": {"type": "number", "minimum": 0},
                "thread_id": {"type": "string", "maxLength": 24},
                "turn_id": {"type": "string", "maxLength": 64},
                "metadata": {"type": "object"},
            },
            "required": ["kind", "model"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"usage": {"type": "object"}}, "required": ["usage"]},
    )
    async def record(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        if arguments.get("cached_tokens", 0) > arguments.get("input_tokens", 0):
            raise invalid_params("cached_tokens are part of input_tokens and cannot exceed them")
        agent = str(ctx.room().participants.get(ctx.caller.participant_id, {}).get("agent") or "")
        trace_id = ctx.traceparent.split("-")[1] if ctx.traceparent else ""
        record = await sync_to_async(_record)(ctx, arguments, agent, trace_id)
        return {"usage": record}
