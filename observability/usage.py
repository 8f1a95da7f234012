"""Recording usage: priced at record time, settling its reservation in the same transaction.

The `usage` toolkit and the metering proxy both come through here, so usage is priced and counted
against budgets the same way whoever reports it."""

from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.sql import InsertQuery
from django.utils import timezone

from .budgets import Who, find_reservation, settle
from .models import UsageRecord
from .pricing import Amounts, price_usage

if TYPE_CHECKING:
    from toolkits.base import CallContext


@dataclass(frozen=True)
class SpentBy:
    """The built-in tool call a usage was spent for: its ledger row, its `toolkit.tool`, its span."""

    call_id: str = ""
    tool: str = ""
    trace_id: str = ""
    span_id: str = ""


def spent_by(ctx: "CallContext", tool: str) -> SpentBy:
    """What the built-in `tool` (`toolkit.tool`, the one `ctx` is a call of) records its own
    spending with, so the usage lands on its call (docs/billing.md, "What a tool call cost"). Not
    for `usage.record`: what a participant reports is its own consumption, not the recording call's."""
    parts = ctx.traceparent.split("-") if ctx.traceparent else []
    trace_id, span_id = (parts[1], parts[2]) if len(parts) == 4 else ("", "")
    return SpentBy(ctx.call_id, tool, trace_id, span_id)


class UsageFields(TypedDict):
    """What one usage record says, besides who spent it (`record_usage`, `usage_row`)."""

    kind: str
    model: str
    amounts: Amounts
    thread_id: NotRequired[str]
    turn_id: NotRequired[str]
    trace_id: NotRequired[str]
    span_id: NotRequired[str]
    metadata: NotRequired[dict[str, Any] | None]
    # the built-in tool call that spent it: its trace and span replace `trace_id` and `span_id`
    by: NotRequired[SpentBy | None]


def record_usage(who: Who, *, reservation_id: str | None = None, **fields: Unpack[UsageFields]) -> UsageRecord:
    """Writes one usage record at the price in effect now (unpriced, cost 0, if the model has
    none) and settles `reservation_id` (-32002 if this room has no such reservation)."""
    record = usage_row(who, **fields)
    with transaction.atomic():
        if reservation_id is not None:
            record.reservation = find_reservation(reservation_id, who.project_id, who.room_id, lock=True)
            settle(record.reservation, record.created_at)
        record.save(force_insert=True)
    return record


def record_usages(rows: list[dict[str, Any]]) -> None:
    """Writes usage rows made by `usage_values` (none settling a reservation) in one transaction,
    as one INSERT executed for every row: a writer with many queued (the metering proxy under
    load) pays for one commit, not one each. Django's bulk_create compiles a statement with a
    placeholder for every value of every row, and model instances cost as much again to make and
    take apart; a value is prepared here as bulk_create would prepare it (the field's
    `get_db_prep_save`), but a string, number or key id, which that leaves as it is, is taken as
    it is."""
    if not rows:
        return
    db = connections[DEFAULT_DB_ALIAS]  # not the `connection` proxy: one thread-local lookup
    converters = [
        (name, None if convert is None else partial(convert, connection=db)) for name, convert in _converters()
    ]
    values = [[row[name] if convert is None else convert(row[name]) for name, convert in converters] for row in rows]
    with transaction.atomic(using=db.alias), db.cursor() as cursor:
        cursor.executemany(_insert_statement(db), values)


# Fields whose get_db_prep_save returns a string, number, boolean or None as it is given
TAKEN_AS_IS = {
    "CharField",
    "TextField",
    "IntegerField",
    "PositiveIntegerField",
    "BigIntegerField",
    "FloatField",
    "BooleanField",
    "ForeignKey",
}


@cache
def _converters() -> list[tuple[str, Any]]:
    """(attname, the field's get_db_prep_save or None when a value goes as it is), in the INSERT's order."""
    return [
        (field.attname, None if field.get_internal_type() in TAKEN_AS_IS else field.get_db_prep_save)
        for field in _insert_fields()
    ]


@cache
def _insert_fields() -> list[Any]:
    return [field for field in UsageRecord._meta.concrete_fields if not field.primary_key]


_insert_statements: dict[str, str] = {}


def _insert_statement(db: Any) -> str:
    """The one-row INSERT of every field but the id, as Django writes it for `db`'s backend."""
    statement = _insert_statements.get(db.vendor)
    if statement is None:
        query = InsertQuery(UsageRecord)
        query.insert_values(_insert_fields(), [UsageRecord()])
        [(statement, _params)] = query.get_compiler(connection=db).as_sql()
        _insert_statements[db.vendor] = statement
    return statement


def usage_row(who: Who, *, now: datetime | None = None, **fields: Unpack[UsageFields]) -> UsageRecord:
    """One usage record, priced at `now` (default: now), not saved."""
    values, price = _priced_values(who, now, fields)
    record = UsageRecord(**values)
    record.price = price
    return record


def usage_values(who: Who, *, now: datetime | None = None, **fields: Unpack[UsageFields]) -> dict[str, Any]:
    """One usage record's values by field attname (`project_id`, `price_id`…), priced at `now`
    (default: now), for `record_usages`."""
    return _priced_values(who, now, fields)[0]


def _priced_values(who: Who, now: datetime | None, fields: UsageFields) -> tuple[dict[str, Any], Any]:
    kind, model, amounts, by = fields["kind"], fields["model"], fields["amounts"], fields.get("by")
    trace_id, span_id = fields.get("trace_id", ""), fields.get("span_id", "")
    if by is not None:
        trace_id, span_id = by.trace_id or trace_id, by.span_id or span_id
    now = now or timezone.now()
    price, cost = price_usage(kind, model, amounts, now)
    values = {
        "project_id": who.project_id,
        "room_id": who.room_id,
        "room_name": who.room_name,
        "participant_id": who.participant_id,
        "identity": who.identity,
        "agent": who.agent,
        "kind": kind,
        "model": model,
        "input_tokens": amounts.input_tokens,
        "output_tokens": amounts.output_tokens,
        "cached_tokens": amounts.cached_tokens,
        "quantity": amounts.quantity,
        "thread_id": fields.get("thread_id", ""),
        "turn_id": fields.get("turn_id", ""),
        "trace_id": trace_id,
        "span_id": span_id,
        "call_id": by.call_id if by else "",
        "tool": by.tool if by else "",
        "metadata": fields.get("metadata") or {},
        "cost": cost,
        "price_id": price.pk if price is not None else None,
        "priced": price is not None,
        "reservation_id": None,
        "created_at": now,
    }
    return values, price


def reprice(records: Any) -> int:
    """Prices unpriced records at the price in effect when each was recorded (after an operator
    added the missing price). Priced records are never touched. Returns how many got a price."""
    count = 0
    for record in records.filter(priced=False):
        amounts = Amounts(record.input_tokens, record.output_tokens, record.cached_tokens, record.quantity)
        price, cost = price_usage(record.kind, record.model, amounts, record.created_at)
        if price is not None:
            UsageRecord.objects.filter(pk=record.pk, priced=False).update(price=price, cost=cost, priced=True)
            count += 1
    return count
