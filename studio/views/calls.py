"""The tool calls page (the ledger, per project or per room): filters, pages, latency percentiles."""

import math
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from observability.models import ToolCall
from rooms.models import Project

from ..access import access_project, projects_for

CALLS_PER_PAGE = 50
# Percentiles are computed in Python (the same on SQLite and Postgres) over the newest rows that
# match the filters, at most this many: enough for a stable p99, bounded for the page's memory.
PERCENTILE_SAMPLE = 20_000


class CallFilterForm(forms.Form):
    """Every field narrows the list; an empty one does not. Sent with GET so a view is a link."""

    caller = forms.CharField(required=False, max_length=200, help_text="identity, exact")
    toolkit = forms.CharField(required=False, max_length=64)
    tool = forms.CharField(required=False, max_length=64)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *ToolCall.Status.choices])
    since = forms.DateTimeField(
        required=False, label="From (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, label="To (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    trace = forms.RegexField(required=False, regex=r"^[0-9a-f]{32}$", label="Trace id", max_length=32)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("'From' must be before 'To'.")
        return data

    def apply(self, calls: QuerySet[ToolCall]) -> QuerySet[ToolCall]:
        data = self.cleaned_data
        if data.get("caller"):
            calls = calls.filter(caller_identity=data["caller"])
        if data.get("toolkit"):
            calls = calls.filter(toolkit=data["toolkit"])
        if data.get("tool"):
            calls = calls.filter(tool=data["tool"])
        if data.get("status"):
            calls = calls.filter(status=data["status"])
        if data.get("since"):
            calls = calls.filter(started_at__gte=data["since"])
        if data.get("until"):
            calls = calls.filter(started_at__lt=data["until"])
        if data.get("trace"):
            calls = calls.filter(trace_id=data["trace"])
        return calls


@dataclass
class ToolLatency:
    tool: str
    calls: int
    failed: int
    p50: float
    p95: float
    p99: float
    max: float


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (what dashboards usually show)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def latency_by_tool(calls: QuerySet[ToolCall]) -> tuple[list[ToolLatency], bool]:
    """Latency percentiles per toolkit.tool over the newest matching calls; and whether the
    sample was cut at PERCENTILE_SAMPLE."""
    rows = list(
        calls.order_by("-started_at").values_list("toolkit", "tool", "latency_ms", "status")[: PERCENTILE_SAMPLE + 1]
    )
    truncated = len(rows) > PERCENTILE_SAMPLE
    samples: dict[str, list[float]] = {}
    failed: dict[str, int] = {}
    for toolkit, tool, latency, status in rows[:PERCENTILE_SAMPLE]:
        name = f"{toolkit}.{tool}"
        samples.setdefault(name, []).append(latency)
        failed[name] = failed.get(name, 0) + (status != ToolCall.Status.OK)
    table = []
    for name, latencies in samples.items():
        latencies.sort()
        table.append(
            ToolLatency(
                tool=name,
                calls=len(latencies),
                failed=failed[name],
                p50=percentile(latencies, 0.50),
                p95=percentile(latencies, 0.95),
                p99=percentile(latencies, 0.99),
                max=latencies[-1],
            )
        )
    table.sort(key=lambda row: (-row.p95, row.tool))
    return table, truncated


def _calls_page(request: HttpRequest, project: Project, room: str | None) -> HttpResponse:
    calls = ToolCall.objects.filter(project=project)
    if room is not None:
        calls = calls.filter(room_name=room)
    form = CallFilterForm(request.GET or None)
    if form.is_bound and form.is_valid():
        calls = form.apply(calls)
    elif form.is_bound:
        calls = calls.none()  # a filter that does not parse shows nothing but its error
    page = Paginator(calls.order_by("-started_at", "-id"), CALLS_PER_PAGE).get_page(request.GET.get("page"))
    latencies, sample_cut = latency_by_tool(calls)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "studio/calls.html",
        {
            "projects": projects_for(request),
            "project": project,
            "room": room,
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "latencies": latencies,
            "sample_cut": sample_cut,
            "sample_size": PERCENTILE_SAMPLE,
        },
    )


@login_required
def project_calls(request: HttpRequest, project: str) -> HttpResponse:
    return _calls_page(request, access_project(request, project), None)


@login_required
def room_calls(request: HttpRequest, project: str, room: str) -> HttpResponse:
    return _calls_page(request, access_project(request, project), room)
