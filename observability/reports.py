"""Cost and usage totals over both ledgers, grouped by any of: project, room, agent, identity,
model, tool, day, month. One vocabulary for `usage.summary` and the admin's cost report.

A tool call has a tool but no model; a usage record has a model, and a tool only when a built-in
tool call spent it (rag.search embedding its query: `UsageRecord.call_id`, `tool`). Grouped by a
dimension a row does not have, the row lands in the group whose key is None. Filters work the same
way: filtering by `model` (or `thread_id`, `turn_id`) leaves tool calls out; by `tool` (or
`call_id`) keeps the usage those calls spent. A built-in call's spending is counted once, as that
usage: its own row's cost is only what a host reported. Refused tool calls (never routed, never
charged) are left out.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Concat, TruncDate, TruncMonth

from rooms.models import Project

from .models import ToolCall, UsageRecord
from .money import money_text

DIMENSIONS = ("project", "room", "agent", "identity", "model", "tool", "day", "month")
FILTERS = ("room", "agent", "identity", "model", "tool", "trace_id", "thread_id", "turn_id", "call_id")
TIME_DIMENSIONS = {"day", "month"}
MAX_GROUPS = 1000


def _usage_expressions() -> dict[str, Any]:
    return {
        "project": F("project_id"),
        "room": F("room_name"),
        "agent": F("agent"),
        "identity": F("identity"),
        "model": F("model"),
        "tool": F("tool"),
        "day": TruncDate("created_at", tzinfo=UTC),
        "month": TruncMonth("created_at", tzinfo=UTC),
    }


def _call_expressions() -> dict[str, Any]:
    return {
        "project": F("project_id"),
        "room": F("room_name"),
        "agent": F("caller_agent"),
        "identity": F("caller_identity"),
        "model": None,
        "tool": Concat("toolkit", Value("."), "tool"),
        "day": TruncDate("started_at", tzinfo=UTC),
        "month": TruncMonth("started_at", tzinfo=UTC),
    }


def _usage_filter(name: str, value: str) -> Q | None:
    if name == "tool":  # `toolkit.tool`, or every tool of a toolkit
        return Q(tool=value) if "." in value else Q(tool__startswith=f"{value}.")
    fields = {"room": "room_name", "agent": "agent", "identity": "identity", "model": "model"}
    fields |= {"trace_id": "trace_id", "thread_id": "thread_id", "turn_id": "turn_id", "call_id": "call_id"}
    return Q(**{fields[name]: value}) if name in fields else None


def _call_filter(name: str, value: str) -> Q | None:
    if name == "tool":
        toolkit, dot, tool = value.partition(".")
        return Q(toolkit=toolkit, tool=tool) if dot else Q(toolkit=toolkit)
    fields = {"room": "room_name", "agent": "caller_agent", "identity": "caller_identity", "trace_id": "trace_id"}
    fields |= {"call_id": "call_id"}
    return Q(**{fields[name]: value}) if name in fields else None


@dataclass
class Totals:
    cost: Decimal = Decimal(0)
    usage_cost: Decimal = Decimal(0)
    tool_cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    quantity: float = 0.0
    records: int = 0
    unpriced: int = 0
    calls: int = 0

    def add(self, other: "Totals") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_record(self) -> dict[str, Any]:
        return {
            "cost": money_text(self.cost),
            "usage_cost": money_text(self.usage_cost),
            "tool_cost": money_text(self.tool_cost),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "quantity": self.quantity,
            "records": self.records,
            "unpriced": self.unpriced,
            "calls": self.calls,
        }


@dataclass
class Summary:
    group_by: list[str]
    start: datetime
    end: datetime
    groups: list[tuple[dict[str, Any], Totals]] = field(default_factory=list)
    total: Totals = field(default_factory=Totals)
    truncated: bool = False

    def to_record(self) -> dict[str, Any]:
        return {
            "from": _iso(self.start),
            "to": _iso(self.end),
            "currency": settings.MESHSITE_CURRENCY,
            "group_by": self.group_by,
            "groups": [{**key, **totals.to_record()} for key, totals in self.groups],
            "total": self.total.to_record(),
            "truncated": self.truncated,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _key_value(dimension: str, value: Any, projects: dict[int, str]) -> Any:
    if value is None or value == "":
        return None
    if dimension == "project":
        return projects.get(value, str(value))
    if dimension == "day":
        return value.isoformat() if isinstance(value, date) else str(value)
    if dimension == "month":
        return value.strftime("%Y-%m") if isinstance(value, (date, datetime)) else str(value)[:7]
    return value


def _grouped(
    queryset: QuerySet[Any], expressions: dict[str, Any], group_by: list[str], aggregates: dict[str, Any]
) -> Iterable[dict[str, Any]]:
    annotations = {f"k_{d}": expressions[d] for d in group_by if expressions[d] is not None}
    rows = queryset.annotate(**annotations).values(*annotations).annotate(**aggregates).order_by()
    for row in rows:
        yield {**row, **{f"k_{d}": None for d in group_by if expressions[d] is None}}


def summarize(
    *,
    start: datetime,
    end: datetime,
    group_by: list[str],
    project_id: int | None = None,
    room_id: int | None = None,
    filters: dict[str, str] | None = None,
) -> Summary:
    """Totals of [start, end) for one project (or every project: None), one room (None: all)."""
    unknown = set(group_by) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"cannot group by {', '.join(sorted(unknown))}")
    usage = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
    calls = ToolCall.objects.filter(started_at__gte=start, started_at__lt=end).exclude(status=ToolCall.Status.REFUSED)
    if project_id is not None:
        usage, calls = usage.filter(project_id=project_id), calls.filter(project_id=project_id)
    if room_id is not None:
        usage, calls = usage.filter(room_id=room_id), calls.filter(room_id=room_id)
    with_usage = with_calls = True
    for name, value in (filters or {}).items():
        if name not in FILTERS:
            raise ValueError(f"cannot filter by {name}")
        usage_q, call_q = _usage_filter(name, value), _call_filter(name, value)
        with_usage, usage = with_usage and usage_q is not None, usage.filter(usage_q) if usage_q else usage
        with_calls, calls = with_calls and call_q is not None, calls.filter(call_q) if call_q else calls

    merged: dict[tuple[Any, ...], Totals] = {}
    raw: list[tuple[dict[str, Any], Totals]] = []
    if with_usage:
        aggregates = {
            "s_cost": Sum("cost"),
            "s_in": Sum("input_tokens"),
            "s_out": Sum("output_tokens"),
            "s_cached": Sum("cached_tokens"),
            "s_quantity": Sum("quantity"),
            "s_records": Count("id"),
            "s_unpriced": Count("id", filter=Q(priced=False)),
        }
        for row in _grouped(usage, _usage_expressions(), group_by, aggregates):
            cost = Decimal(row["s_cost"] or 0)
            totals = Totals(
                cost=cost,
                usage_cost=cost,
                input_tokens=row["s_in"] or 0,
                output_tokens=row["s_out"] or 0,
                cached_tokens=row["s_cached"] or 0,
                quantity=float(row["s_quantity"] or 0),
                records=row["s_records"],
                unpriced=row["s_unpriced"],
            )
            raw.append((row, totals))
    if with_calls:
        aggregates = {"s_cost": Sum("cost"), "s_calls": Count("id")}
        for row in _grouped(calls, _call_expressions(), group_by, aggregates):
            cost = Decimal(row["s_cost"] or 0)
            raw.append((row, Totals(cost=cost, tool_cost=cost, calls=row["s_calls"])))

    project_ids = {row["k_project"] for row, _ in raw if row.get("k_project") is not None}
    projects = dict(Project.objects.filter(pk__in=project_ids).values_list("pk", "slug")) if project_ids else {}
    summary = Summary(group_by=list(group_by), start=start, end=end)
    for row, totals in raw:
        key = tuple(_key_value(d, row[f"k_{d}"], projects) for d in group_by)
        merged.setdefault(key, Totals()).add(totals)
        summary.total.add(totals)

    def order(item: tuple[tuple[Any, ...], Totals]) -> tuple[Any, ...]:
        key, totals = item
        text = tuple("" if part is None else str(part) for part in key)
        if TIME_DIMENSIONS & set(group_by):
            return text
        return (-totals.cost, text)

    ordered = sorted(merged.items(), key=order)
    summary.truncated = len(ordered) > MAX_GROUPS
    summary.groups = [(dict(zip(group_by, key, strict=True)), totals) for key, totals in ordered[:MAX_GROUPS]]
    return summary
