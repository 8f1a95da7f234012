"""The vector store in the admin: chunks to inspect (read-only), the Indexer's jobs to follow."""

from django.contrib import admin
from django.http import HttpRequest

from .models import Chunk, IndexJob


@admin.register(IndexJob)
class IndexJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "room",
        "action",
        "source_kind",
        "source_ref",
        "source_part",
        "version",
        "status",
        "chunks",
        "attempts",
        "updated_at",
    )
    list_filter = ("status", "action", "source_kind")
    search_fields = ("source_ref", "room__name", "detail")
    readonly_fields = [f.name for f in IndexJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ("id", "room", "collection", "source_kind", "source_ref", "source_part", "ordinal", "model", "dims")
    list_filter = ("source_kind", "collection", "model")
    search_fields = ("source_ref", "text", "room__name")
    exclude = ("embedding",)
    readonly_fields = (
        "room",
        "collection",
        "source_kind",
        "source_ref",
        "source_part",
        "version",
        "ordinal",
        "text",
        "metadata",
        "model",
        "dims",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Chunk | None = None) -> bool:
        return False
