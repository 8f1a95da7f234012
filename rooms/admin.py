from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .actions.projects import do_create_api_key, do_revoke_api_key
from .models import ApiKey, HostedToolkit, Membership, Participant, Project, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["project"]
    fields = ["project", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    # Revocation is the "Revoke the selected keys" action: it cannot be undone by editing a date.
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = do_create_api_key(obj.project, obj.name)
        vars(obj).update(vars(key))  # the admin goes on with `obj` (its log entry, the redirect)
        messages.warning(request, f"The new API key is {raw} — copy it now, it is not shown again.")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = sum(do_revoke_api_key(key) for key in queryset)
        messages.success(request, f"Revoked {count} key(s).")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_at"]
    list_filter = ["project"]
    search_fields = ["name"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the mesh itself: visible in the admin, never edited there."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = ["identity", "id", "role", "room", "joined_at", "left_at", "left_reason", "node"]
    list_filter = ["role", "room__project", ("left_at", admin.EmptyFieldListFilter)]
    search_fields = ["identity", "id"]
    list_select_related = ["room__project"]


@admin.register(HostedToolkit)
class HostedToolkitAdmin(ReadOnlyAdmin):
    list_display = ["name", "public", "participant", "room", "registered_at"]
    list_select_related = ["participant", "room__project"]
