from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import ToolCall, UsageRecord


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "toolkit",
        "tool",
        "caller_identity",
        "on_behalf_of_identity",
        "host_identity",
        "status",
        "error_code",
        "latency",
        "request_bytes",
        "response_bytes",
        "cost",
        "room_name",
    ]
    list_filter = ["status", "toolkit", "project"]
    search_fields = ["call_id", "trace_id", "caller_identity", "host_identity", "tool"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, call: ToolCall) -> str:
        return f"{call.latency_ms:.1f} ms"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "model",
        "identity",
        "agent",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cost",
        "room_name",
        "thread_id",
    ]
    list_filter = ["kind", "model", "project"]
    search_fields = ["identity", "agent", "model", "thread_id", "turn_id", "trace_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
