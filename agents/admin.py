from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from .actions import do_create_service, do_set_service_enabled, do_stop_dispatch, service_defaults
from .introspection import ServiceClassError
from .models import Dispatch, Service


class ServiceForm(forms.ModelForm):
    url = forms.URLField(required=False, assume_scheme="https", help_text=Service._meta.get_field("url").help_text)

    class Meta:
        model = Service
        fields = [
            "project",
            "room",
            "name",
            "title",
            "description",
            "kind",
            "class_path",
            "config",
            "url",
            "secret",
            "input_schema",
            "output_schema",
            "allow_multiple",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == Service.Kind.PYTHON:
            if not data.get("class_path"):
                self.add_error("class_path", "A Python service needs the class path of its agent.")
            else:
                try:
                    declared = service_defaults(data["class_path"], data.get("config"))
                except ServiceClassError as exc:
                    self.add_error("class_path", str(exc))
                else:
                    for key, value in declared.items():
                        if not data.get(key):
                            data[key] = value
        elif kind == Service.Kind.WEBHOOK:
            if not data.get("url"):
                self.add_error("url", "A webhook service needs the URL its invitation is POSTed to.")
            if not data.get("secret"):
                self.add_error("secret", "A webhook service needs a signing secret.")
        config = data.get("config")
        if config is not None and not isinstance(config, dict):
            self.add_error("config", "The config must be a JSON object of keyword arguments.")
        return data


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    form = ServiceForm
    list_display = ["name", "project", "room", "kind", "enabled", "allow_multiple", "running", "updated_at"]
    list_filter = ["project", "kind", "enabled"]
    search_fields = ["name", "title", "class_path", "url"]
    actions = ["enable", "disable"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Service]:
        return (
            super()
            .get_queryset(request)
            .select_related("project", "room")
            .annotate(running_count=Count("dispatches", filter=Q(dispatches__status=Dispatch.Status.RUNNING)))
        )

    @admin.display(description="running", ordering="running_count")
    def running(self, service: Service) -> int:
        return int(getattr(service, "running_count", 0))

    def save_model(self, request: HttpRequest, obj: Service, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        fields = {name: getattr(obj, name) for name in form._meta.fields if name not in ("project", "name")}
        service = do_create_service(obj.project, obj.name, **fields)
        vars(obj).update(vars(service))  # the admin goes on with `obj` (its log entry, the redirect)

    @admin.action(description="Enable the selected services")
    def enable(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        messages.success(request, f"Enabled {self._set_enabled(queryset, True)} service(s).")

    @admin.action(description="Disable the selected services (and stop their running agents)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        services = list(queryset)
        stopped = sum(do_set_service_enabled(service, False) for service in services)
        stopping = f" Stopping {stopped} of their agents." if stopped else ""
        messages.success(request, f"Disabled {len(services)} service(s).{stopping}")

    @staticmethod
    def _set_enabled(queryset: QuerySet[Service], enabled: bool) -> int:
        services = list(queryset)
        for service in services:
            do_set_service_enabled(service, enabled)
        return len(services)


@admin.register(Dispatch)
class DispatchAdmin(admin.ModelAdmin):
    list_display = ["service", "room", "identity", "status", "host", "requested_by", "created_at", "ended_at", "error"]
    list_filter = ["status", "service__project"]
    search_fields = ["identity", "host", "participant_id"]
    list_select_related = ["service", "room__project"]
    actions = ["stop"]

    @admin.action(description="Stop selected agents", permissions=["stop"])
    def stop(self, request: HttpRequest, queryset: QuerySet[Dispatch]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        stopped = sum(do_stop_dispatch(dispatch_id, f"stopped by {request.user} in the admin") for dispatch_id in ids)
        skipped = len(ids) - stopped
        messages.success(
            request, f"Stopping {stopped} agent(s)." + (f" {skipped} had already ended." if skipped else "")
        )

    def has_stop_permission(self, request: HttpRequest) -> bool:
        # the admin edits no dispatch by hand, but may end one
        return request.user.has_perm("agents.change_dispatch")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Background work: Workers, Celery worker health, task statistics (registered there).
from . import worker_admin  # noqa: E402, F401
