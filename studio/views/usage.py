"""Usage and cost over time (per project or per room), drawn with Chart.js from the ledger's totals."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from observability import reports
from observability.money import money_text
from rooms.models import Project, Room

from ..access import access_project, projects_for

PERIODS = (7, 30, 90)


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", "30"))
    except ValueError:
        return 30
    return days if days in PERIODS else 30


def daily_series(summary: reports.Summary, start: datetime, days: int) -> dict[str, list[Any]]:
    """One point per day of the period, zero where nothing happened (a chart needs every day)."""
    by_day = {key["day"]: totals for key, totals in summary.groups}
    series: dict[str, list[Any]] = {
        k: [] for k in ("days", "usage_cost", "tool_cost", "input_tokens", "output_tokens", "calls")
    }
    for offset in range(days):
        day = (start + timedelta(days=offset)).date().isoformat()
        totals = by_day.get(day, reports.Totals())
        series["days"].append(day)
        series["usage_cost"].append(float(totals.usage_cost))
        series["tool_cost"].append(float(totals.tool_cost))
        series["input_tokens"].append(totals.input_tokens)
        series["output_tokens"].append(totals.output_tokens)
        series["calls"].append(totals.calls)
    return series


def _usage_page(request: HttpRequest, project: Project, room: str | None) -> HttpResponse:
    days = _days(request)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=days - 1), today + timedelta(days=1)
    room_id = None
    if room is not None:
        # A room that was never created has no usage: an id that matches nothing.
        room_id = Room.objects.filter(project=project, name=room).values_list("pk", flat=True).first() or -1

    def summary(dimension: str) -> reports.Summary:
        return reports.summarize(start=start, end=end, group_by=[dimension], project_id=project.pk, room_id=room_id)

    per_day, per_model, per_tool = summary("day"), summary("model"), summary("tool")
    return render(
        request,
        "studio/usage.html",
        {
            "projects": projects_for(request),
            "project": project,
            "room": room,
            "days": days,
            "periods": PERIODS,
            "currency": settings.MESHSITE_CURRENCY,
            "total": per_day.total,
            "total_cost": money_text(per_day.total.cost),
            "series": daily_series(per_day, start, days),
            "models": [(key["model"], totals) for key, totals in per_model.groups if key["model"]],
            "tools": [(key["tool"], totals) for key, totals in per_tool.groups if key["tool"]],
        },
    )


@login_required
def project_usage(request: HttpRequest, project: str) -> HttpResponse:
    return _usage_page(request, access_project(request, project), None)


@login_required
def room_usage(request: HttpRequest, project: str, room: str) -> HttpResponse:
    return _usage_page(request, access_project(request, project), room)
