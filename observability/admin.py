"""The ledger, prices, budgets and the cost report in the admin (docs/billing.md)."""

import csv
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.html import format_html

from rooms.models import Project

from . import budgets, reports
from .models import Budget, CostReport, ModelPrice, Reservation, ToolCall, UsageRecord
from .money import money_text
from .usage import reprice

NEAR = 80  # percent of a budget from which it shows as near its limit


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnly):
    list_display = [
        "started_at",
        "toolkit",
        "tool",
        "caller_identity",
        "caller_agent",
        "on_behalf_of_identity",
        "host_identity",
        "status",
        "error_code",
        "latency",
        "request_bytes",
        "response_bytes",
        "cost",
        "spent",
        "room_name",
    ]
    list_filter = ["status", "toolkit", "project"]
    search_fields = ["call_id", "trace_id", "caller_identity", "caller_agent", "host_identity", "tool"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, call: ToolCall) -> str:
        return f"{call.latency_ms:.1f} ms"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ToolCall]:
        # What a built-in call spent is usage linked to it (one query for the page, not one per row)
        linked = UsageRecord.objects.filter(call_id=OuterRef("call_id")).order_by()
        spent = linked.values("call_id").annotate(total=Sum("cost"))
        return super().get_queryset(request).annotate(usage_cost=Subquery(spent.values("total")))

    @admin.display(description="Usage it spent")
    def spent(self, call: ToolCall) -> str:
        """The usage a built-in call spent (its embeddings…), counted in the usage records: the
        call's own cost column is only what a host reported."""
        total = getattr(call, "usage_cost", None)
        return "" if total is None else f"{money_text(total)} {settings.MESHSITE_CURRENCY}"


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnly):
    list_display = [
        "created_at",
        "kind",
        "model",
        "identity",
        "agent",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "quantity",
        "charged",
        "room_name",
        "thread_id",
        "tool",
    ]
    list_filter = ["priced", "kind", "model", "project"]
    search_fields = ["identity", "agent", "model", "thread_id", "turn_id", "trace_id", "call_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["price_unpriced"]

    @admin.display(description="Cost", ordering="cost")
    def charged(self, record: UsageRecord) -> str:
        if not record.priced:
            return format_html('<strong style="color:#ba2121">{}</strong>', "unpriced")
        return f"{money_text(record.cost)} {settings.MESHSITE_CURRENCY}"

    @admin.action(description="Price the selected unpriced records (at the price of their time)")
    def price_unpriced(self, request: HttpRequest, queryset: QuerySet[UsageRecord]) -> None:
        count = reprice(queryset)
        messages.success(request, f"Priced {count} record(s); records whose model still has no price stay unpriced.")


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "kind",
        "provider",
        "input_per_million",
        "cached_input_per_million",
        "output_per_million",
        "unit_price",
        "unit",
        "currency",
        "effective_from",
        "charged",
    ]
    list_filter = ["kind", "provider", "currency"]
    search_fields = ["model", "provider"]
    date_hierarchy = "effective_from"
    FIGURES = [
        "provider",
        "model",
        "kind",
        "input_per_million",
        "cached_input_per_million",
        "output_per_million",
        "unit_price",
        "unit",
        "currency",
        "effective_from",
    ]

    @admin.display(description="Charged", boolean=True)
    def charged(self, price: ModelPrice) -> bool:
        return price.usage.exists()

    def get_readonly_fields(self, request: HttpRequest, obj: ModelPrice | None = None) -> list[str]:
        # What was charged at a price stays charged at it: a change of price is a new row.
        if obj is not None and obj.usage.exists():
            return self.FIGURES
        return []

    def has_delete_permission(self, request: HttpRequest, obj: ModelPrice | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.usage.exists())


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "room", "period", "amount", "hard", "active", "spent", "held", "used"]
    list_filter = ["period", "hard", "active", "project"]
    autocomplete_fields = ["project", "room"]
    list_select_related = ["project", "room"]

    @staticmethod
    def _state(budget: Budget) -> budgets.BudgetState:
        # once per row (the row's instance), as of now
        state: budgets.BudgetState | None = getattr(budget, "_state_now", None)
        if state is None:
            state = budgets.state_of(budget)
            budget._state_now = state  # type: ignore[attr-defined]
        return state

    @admin.display(description="Spent this period")
    def spent(self, budget: Budget) -> str:
        return money_text(self._state(budget).spent)

    @admin.display(description="Reserved")
    def held(self, budget: Budget) -> str:
        return money_text(self._state(budget).held)

    @admin.display(description="% used")
    def used(self, budget: Budget) -> str:
        percent = self._state(budget).percent
        if percent >= NEAR:
            return format_html('<strong style="color:#ba2121">{}%</strong>', f"{percent:.1f}")
        return f"{percent:.1f}%"


@admin.register(Reservation)
class ReservationAdmin(ReadOnly):
    list_display = [
        "public_id",
        "created_at",
        "identity",
        "agent",
        "room_name",
        "amount",
        "state",
        "needs_approval",
        "decision",
        "decided_by",
    ]
    list_filter = ["status", "needs_approval", "decision", "project"]
    search_fields = ["public_id", "identity", "agent"]
    date_hierarchy = "created_at"
    actions = ["release"]

    @admin.display(description="Status", ordering="status")
    def state(self, reservation: Reservation) -> str:
        if reservation.status == Reservation.Status.HELD and reservation.expires_at <= timezone.now():
            return "expired"
        return str(reservation.status)

    @admin.action(description="Release the selected reservations")
    def release(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        count = queryset.filter(status=Reservation.Status.HELD).update(
            status=Reservation.Status.RELEASED, ended_at=timezone.now()
        )
        messages.success(request, f"Released {count} reservation(s).")


# --- the cost report ---------------------------------------------------------------------------

GROUPS = ["project", "room", "agent", "identity", "model", "tool"]
PERIODS = {"day": "per day", "month": "per month", "total": "in total"}
CSV_COLUMNS = ["cost", "usage_cost", "tool_cost", "input_tokens", "output_tokens", "cached_tokens", "quantity"]
CSV_COLUMNS += ["records", "unpriced", "calls"]


def _day(value: str | None, default: date) -> date:
    parsed = parse_date(value) if value else None
    return parsed or default


@admin.register(CostReport)
class CostReportAdmin(admin.ModelAdmin):
    """Cost by project, room, agent, identity, model or tool, per day or month, from both ledgers;
    as a page or CSV (`?format=csv`). Budgets near their limit are listed above it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        today = timezone.now().astimezone(UTC).date()
        group = request.GET.get("group", "project")
        group = group if group in GROUPS else "project"
        per = request.GET.get("per", "day")
        per = per if per in PERIODS else "day"
        start = _day(request.GET.get("from"), today.replace(day=1))
        end = _day(request.GET.get("to"), today)
        project_id = request.GET.get("project") or None
        project = Project.objects.filter(pk=project_id).first() if project_id and project_id.isdigit() else None

        group_by = [] if per == "total" else [per]
        if group != "project" and project is None:
            group_by.append("project")
        group_by.append(group)
        summary = reports.summarize(
            start=datetime.combine(start, time(), tzinfo=UTC),
            end=datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC),
            group_by=group_by,
            project_id=project.pk if project else None,
        )
        if request.GET.get("format") == "csv":
            return self._csv(summary, start, end)

        near = [
            state
            for budget in Budget.objects.filter(active=True).select_related("project", "room")
            if (state := budgets.state_of(budget)).percent >= NEAR
        ]
        query = request.GET.copy()
        query["format"] = "csv"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Cost report",
            "summary": summary,
            "columns": group_by,
            "currency": settings.MESHSITE_CURRENCY,
            "group": group,
            "groups": GROUPS,
            "per": per,
            "periods": PERIODS,
            "start": start,
            "end": end,
            "project": project,
            "projects": Project.objects.order_by("slug"),
            "near": near,
            "near_percent": NEAR,
            "csv_query": query.urlencode(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/observability/cost_report.html", context)

    @staticmethod
    def _csv(summary: reports.Summary, start: date, end: date) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="cost-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
        writer = csv.writer(response)
        writer.writerow([*summary.group_by, *CSV_COLUMNS, "currency"])
        for key, totals in summary.groups:
            record = totals.to_record()
            writer.writerow(
                [
                    *(key[d] or "" for d in summary.group_by),
                    *(record[c] for c in CSV_COLUMNS),
                    settings.MESHSITE_CURRENCY,
                ]
            )
        return response
