"""The trace view: every call of one trace (a ChatBot turn, an ask) across participants and nodes,
as a tree drawn as a waterfall, with the model usage recorded in it."""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime

from observability.models import ToolCall, UsageRecord

from ..access import access_project, projects_for

TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# A trace is drawn whole up to this many rows; beyond, the page says it was cut.
MAX_SPANS = 2000


@dataclass
class Span:
    key: str
    kind: str  # "call" or "usage"
    label: str
    start: datetime
    duration_ms: float
    status: str
    cost: Decimal
    who: str = ""
    host: str = ""
    node: str = ""
    room: str = ""
    detail: str = ""
    error: str = ""
    parent: str = ""
    depth: int = 0
    offset_pct: float = 0.0
    width_pct: float = 0.0
    offset_ms: float = 0.0
    children: list["Span"] = field(default_factory=list)


def call_span(call: ToolCall) -> Span:
    return Span(
        key=call.span_id or call.call_id,
        kind="call",
        label=f"{call.toolkit}.{call.tool}",
        start=call.started_at,
        duration_ms=call.latency_ms,
        status=call.status,
        cost=call.cost,
        who=call.caller_identity + (f" for {call.on_behalf_of_identity}" if call.on_behalf_of_identity else ""),
        host=call.host_identity or "built-in",
        node=call.node,
        room=call.room_name,
        error=f"{call.error_code} {call.error_message}".strip() if call.error_code else "",
        parent=call.parent_span_id,
    )


def usage_span(record: UsageRecord, recorded_by: dict[str, str]) -> Span:
    # A record is written when the model call has finished; a `duration_ms` in its metadata (if
    # the agent sent one) places its start, else it shows as a moment at record time.
    duration = record.metadata.get("duration_ms") if isinstance(record.metadata, dict) else None
    duration_ms = float(duration) if isinstance(duration, (int, float)) and duration >= 0 else 0.0
    tokens = (
        f"{record.input_tokens} in / {record.output_tokens} out tokens"
        if record.kind == "llm"
        else f"{record.quantity:g}"
    )
    return Span(
        key=f"usage-{record.pk}",
        kind="usage",
        label=f"{record.kind} {record.model}",
        start=record.created_at - timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
        status="priced" if record.priced else "unpriced",
        cost=record.cost,
        who=record.identity + (f" ({record.agent})" if record.agent else ""),
        room=record.room_name,
        detail=tokens,
        # Under the usage.record call that wrote it: the record's span id ends its call id.
        parent=recorded_by.get(record.span_id, ""),
    )


def build_tree(spans: list[Span]) -> list[Span]:
    """Roots (spans whose parent is not in the trace: the turn itself is not a call), each with
    its children, all in start order."""
    by_key = {span.key: span for span in spans}
    roots: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.kind)):
        parent = by_key.get(span.parent) if span.parent and span.parent != span.key else None
        (parent.children if parent else roots).append(span)
    return roots


def flatten(roots: list[Span]) -> list[Span]:
    rows: list[Span] = []

    def walk(span: Span, depth: int) -> None:
        span.depth = depth
        rows.append(span)
        for child in span.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return rows


def place(rows: list[Span]) -> tuple[datetime | None, float]:
    """Sets each row's bar (offset and width in % of the trace); returns the trace's start and length."""
    if not rows:
        return None, 0.0
    start = min(r.start for r in rows)
    end = max(r.start + timedelta(milliseconds=r.duration_ms) for r in rows)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    for row in rows:
        row.offset_ms = (row.start - start).total_seconds() * 1000
        row.offset_pct = min(100.0, row.offset_ms / total_ms * 100)
        row.width_pct = max(0.4, min(100.0 - row.offset_pct, row.duration_ms / total_ms * 100))
    return start, total_ms


@login_required
def trace_page(request: HttpRequest, project: str, trace_id: str) -> HttpResponse:
    found = access_project(request, project)
    if not TRACE_ID_RE.match(trace_id):
        raise Http404("a trace id is 32 lowercase hex digits")
    calls = list(ToolCall.objects.filter(project=found, trace_id=trace_id).order_by("started_at")[:MAX_SPANS])
    usage = list(UsageRecord.objects.filter(project=found, trace_id=trace_id).order_by("created_at")[:MAX_SPANS])
    recorded_by = {
        c.call_id[-16:]: (c.span_id or c.call_id) for c in calls if (c.toolkit, c.tool) == ("usage", "record")
    }
    spans = [call_span(c) for c in calls] + [usage_span(u, recorded_by) for u in usage]
    rows = flatten(build_tree(spans))
    start, total_ms = place(rows)
    context: dict[str, Any] = {
        "projects": projects_for(request),
        "project": found,
        "trace_id": trace_id,
        "rows": rows,
        "start": start,
        "total_ms": total_ms,
        "cut": len(calls) >= MAX_SPANS or len(usage) >= MAX_SPANS,
        "calls": len(calls),
        "failed": sum(1 for c in calls if c.status != ToolCall.Status.OK),
        "cost": sum((s.cost for s in spans), Decimal(0)),
        "tokens_in": sum(u.input_tokens for u in usage),
        "tokens_out": sum(u.output_tokens for u in usage),
        "participants": sorted(
            {c.caller_identity for c in calls} | {c.host_identity for c in calls if c.host_identity}
        ),
        "nodes": sorted({c.node for c in calls if c.node}),
        "rooms": sorted({c.room_name for c in calls}),
    }
    return render(request, "studio/trace.html", context, status=200 if rows else 404)


@login_required
def find_trace(request: HttpRequest, project: str) -> HttpResponse:
    """The trace of the turn that posted a thread's message: messages do not carry their trace, so
    it is the trace of the last usage the thread recorded before the message (a ChatBot records
    each model call of a turn before it posts the turn's message)."""
    found = access_project(request, project)
    thread = request.GET.get("thread", "")
    before = parse_datetime(request.GET.get("before", "") or "")
    if not thread or before is None:
        raise Http404("give ?thread=<thread id>&before=<ISO time of the message>")
    trace_id = (
        UsageRecord.objects.filter(project=found, thread_id=thread, created_at__lte=before)
        .exclude(trace_id="")
        .order_by("-created_at")
        .values_list("trace_id", flat=True)
        .first()
    )
    if trace_id is None:
        context = {
            "projects": projects_for(request),
            "project": found,
            "message": "No trace was recorded for this turn (it used no model, or its agent records no usage).",
        }
        return render(request, "studio/not_found.html", context, status=404)
    return redirect("studio-trace", found.slug, trace_id)
