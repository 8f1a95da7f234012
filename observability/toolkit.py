"""`usage`: participants (agents, mostly) report what they consumed; the server attributes and
prices it, holds budgets, and answers what things cost.

Who consumed (participant, identity, vouched agent), where (project, room) and in which trace come
from the call, never from the arguments; the reporter says what (kind, model, amounts) and why
(thread, turn). `reserve` before spending, `request_approval` if a soft budget says so (an
owner decides: observability/approvals.py), `record` (with the reservation) after: docs/protocol.md.
"""

from datetime import UTC, datetime, time, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from meshsite.errors import invalid_params, permission_denied
from toolkits.base import BuiltinToolkit, CallContext, builtin_tool

from . import approvals, budgets, reports
from .models import Kind, Reservation
from .pricing import Amounts, BadAmount, parse_money, price_usage
from .usage import record_usage

TOKENS = {"type": "integer", "minimum": 0, "maximum": 100_000_000}
MONEY = {
    "anyOf": [
        {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,9})?$"},
        {"type": "number", "minimum": 0, "maximum": 999_999_999},
    ]
}
RESERVATION_ID = {"type": "string", "minLength": 1, "maxLength": 24}
AMOUNTS = {
    "kind": {"enum": [choice.value for choice in Kind]},
    "model": {"type": "string", "minLength": 1, "maxLength": 200},
    "input_tokens": TOKENS,
    "output_tokens": TOKENS,
    "cached_tokens": TOKENS,
    "quantity": {"type": "number", "minimum": 0, "maximum": 1e12},
}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
DIMENSION = {"enum": list(reports.DIMENSIONS)}
MOMENT = {"type": "string", "minLength": 10, "maxLength": 40}
APPROVAL_TIMEOUT = 120.0  # seconds an owner has to answer, unless the request says otherwise


def _who(ctx: CallContext) -> budgets.Who:
    caller = ctx.caller
    agent = str(ctx.room().participants.get(caller.participant_id, {}).get("agent") or "")
    return budgets.Who(
        caller.project_id, caller.room_id, caller.room_name, caller.participant_id, caller.identity, agent
    )


def _amounts(arguments: dict[str, Any]) -> Amounts:
    amounts = Amounts(
        input_tokens=arguments.get("input_tokens", 0),
        output_tokens=arguments.get("output_tokens", 0),
        cached_tokens=arguments.get("cached_tokens", 0),
        quantity=arguments.get("quantity", 0),
    )
    if amounts.cached_tokens > amounts.input_tokens:
        raise invalid_params("cached_tokens are part of input_tokens and cannot exceed them")
    return amounts


def _moment(value: str, name: str, *, end: bool) -> datetime:
    """An ISO 8601 datetime (UTC if it names no zone) or date: a date `to` includes its day."""
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError:  # well formed, but no such date
        moment = day = None
    if moment is None:
        if day is None:
            raise invalid_params(f"{name} must be an ISO 8601 date or datetime, got {value!r}")
        moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _period(arguments: dict[str, Any]) -> tuple[datetime, datetime]:
    now = timezone.now()
    start = _moment(arguments["from"], "from", end=False) if "from" in arguments else budgets.period_start("month", now)
    end = _moment(arguments["to"], "to", end=True) if "to" in arguments else now
    if end < start:
        raise invalid_params("to is before from")
    return start, end


class UsageToolkit(BuiltinToolkit):
    name = "usage"
    description = "Metered usage and cost: record it, reserve budget before spending, sum it up."

    @builtin_tool(
        description="Record one usage (what was consumed, by which model, for which thread and turn); "
        "it is priced now. Pass the reservation_id from usage.reserve to settle it.",
        input_schema={
            "type": "object",
            "properties": {
                **AMOUNTS,
                "thread_id": {"type": "string", "maxLength": 24},
                "turn_id": {"type": "string", "maxLength": 64},
                "reservation_id": RESERVATION_ID,
                "metadata": {"type": "object"},
            },
            "required": ["kind", "model"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"usage": {"type": "object"}}, "required": ["usage"]},
    )
    async def record(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        amounts = _amounts(arguments)
        who = _who(ctx)
        trace_id = ctx.traceparent.split("-")[1] if ctx.traceparent else ""

        def write() -> dict[str, Any]:
            record = record_usage(
                who,
                kind=arguments["kind"],
                model=arguments["model"],
                amounts=amounts,
                thread_id=arguments.get("thread_id", ""),
                turn_id=arguments.get("turn_id", ""),
                trace_id=trace_id,
                span_id=ctx.call_id[-16:],
                metadata=arguments.get("metadata"),
                reservation_id=arguments.get("reservation_id"),
            )
            return record.to_record()

        return {"usage": await sync_to_async(write)()}

    @builtin_tool(
        description="Hold an estimated cost against the project's and room's budgets before spending it: "
        "give `amount`, or kind, model and the expected tokens to price. Refused with -32008 when a hard "
        "budget would be passed; a soft one answers needs_approval: true.",
        input_schema={
            "type": "object",
            "properties": {
                **AMOUNTS,
                "amount": MONEY,
                "ttl": {"type": "number", "minimum": 1, "maximum": 86400},
                # hold nothing (and write nothing) when no budget applies: the hot path of a turn
                "only_if_budgeted": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"reservation_id": {"type": ["string", "null"]}, "needs_approval": {"type": "boolean"}},
            "required": ["reservation_id", "needs_approval"],
        },
    )
    async def reserve(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        kind, model = arguments.get("kind", ""), arguments.get("model", "")
        if "amount" not in arguments and not (kind and model):
            raise invalid_params("give the estimate as amount, or kind and model with the expected tokens")
        amounts = _amounts(arguments)
        who = _who(ctx)

        def hold() -> dict[str, Any]:
            if arguments.get("only_if_budgeted") and not budgets.applicable(who.project_id, who.room_id).exists():
                return {"reservation_id": None, "needs_approval": False, "budgets": []}
            priced = True
            if "amount" in arguments:
                try:
                    amount = parse_money(arguments["amount"])
                except BadAmount as exc:
                    raise invalid_params(f"invalid amount ({exc})") from None
            else:
                price, amount = price_usage(kind, model, amounts, timezone.now())
                priced = price is not None
            reservation, states = budgets.reserve(who, amount, kind=kind, model=model, ttl=arguments.get("ttl"))
            return {**budgets.reservation_record(reservation, states), "priced": priced}

        return await sync_to_async(hold)()

    @builtin_tool(
        description="Give a reservation back unspent (the call it was for did not happen or was not approved).",
        input_schema={
            "type": "object",
            "properties": {"reservation_id": RESERVATION_ID},
            "required": ["reservation_id"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"released": {"type": "boolean"}}, "required": ["released"]},
    )
    async def release(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        caller = ctx.caller
        released = await sync_to_async(budgets.release)(arguments["reservation_id"], caller.project_id, caller.room_id)
        return {"released": released}

    @builtin_tool(
        description="For a reservation that needs_approval (a soft budget would be passed): the server asks "
        "the owners present (usage.approve grant) in their ui.ask_user and records who decided. Not approved "
        "(denied, nobody answered within `timeout` seconds, no owner present): the reservation is released.",
        input_schema={
            "type": "object",
            "properties": {
                "reservation_id": RESERVATION_ID,
                "reason": {"type": "string", "maxLength": 500},
                "timeout": {"type": "number", "minimum": 1, "maximum": 3600},
            },
            "required": ["reservation_id"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "approved": {"type": "boolean"},
                "decision": {"enum": [choice.value for choice in Reservation.Decision]},
                "decided_by": {"type": ["object", "null"]},
            },
            "required": ["reservation_id", "approved", "decision", "decided_by"],
        },
    )
    async def request_approval(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        caller, public_id = ctx.caller, arguments["reservation_id"]
        agent = _who(ctx).agent
        asker = f"{caller.identity} (agent {agent})" if agent and agent != caller.identity else caller.identity

        def find_owners() -> tuple[Reservation, list[approvals.Owner], str]:
            reservation = approvals.open_request(public_id, caller.participant_id, caller.project_id, caller.room_id)
            if reservation.decision == Reservation.Decision.APPROVED:
                return reservation, [], ""
            owners = approvals.owners_present(
                caller.room_id, reservation.approval_scope or "room", caller.participant_id
            )
            text = approvals.question(reservation, asker, arguments.get("reason", "")) if owners else ""
            return reservation, owners, text

        reservation, owners, question = await sync_to_async(find_owners)()
        if reservation.decision == Reservation.Decision.APPROVED:
            return approvals.outcome(reservation)
        decision: str = Reservation.Decision.NO_OWNER
        owner: approvals.Owner | None = None
        if owners:
            # answer before the caller's own deadline, whatever it asked for
            timeout = min(arguments.get("timeout", APPROVAL_TIMEOUT), max(0.5, ctx.remaining() - 1))
            decision, owner = await approvals.ask_owners(ctx, owners, question, timeout)
        decided = await sync_to_async(approvals.record_decision)(
            public_id, caller.project_id, caller.room_id, decision, owner
        )
        return approvals.outcome(decided)

    @builtin_tool(
        description="Cost and usage totals (LLM and other usage, and tool calls) over a period, grouped by "
        "room, agent, identity, model, tool, day or month: of the caller's room, or of the project "
        "with the usage.read grant on 'project'.",
        input_schema={
            "type": "object",
            "properties": {
                "group_by": {"anyOf": [DIMENSION, {"type": "array", "items": DIMENSION, "minItems": 1, "maxItems": 3}]},
                "from": MOMENT,
                "to": MOMENT,
                "scope": {"enum": ["room", "project"]},
                **{name: NAME for name in reports.FILTERS},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"groups": {"type": "array"}, "total": {"type": "object"}},
            "required": ["groups", "total"],
        },
    )
    async def summary(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        caller = ctx.caller
        scope = arguments.get("scope", "room")
        if not caller.grants.may("usage", "read", scope):
            raise permission_denied(f"this token may not read the {scope}'s usage (grant usage.read)")
        if scope == "room" and "room" in arguments:
            raise invalid_params("room filters a project's summary: use it with scope 'project'")
        group_by = arguments.get("group_by", [])
        group_by = [group_by] if isinstance(group_by, str) else list(dict.fromkeys(group_by))
        start, end = _period(arguments)
        filters = {name: arguments[name] for name in reports.FILTERS if name in arguments}

        def total() -> dict[str, Any]:
            summary = reports.summarize(
                start=start,
                end=end,
                group_by=group_by,
                project_id=caller.project_id,
                room_id=caller.room_id if scope == "room" else None,
                filters=filters,
            )
            record = summary.to_record()
            record["scope"] = scope
            record["room"] = caller.room_name if scope == "room" else filters.get("room")
            return record

        return await sync_to_async(total)()
