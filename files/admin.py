from django.contrib import admin

from .models import StoredFile


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    list_display = ["path", "room", "size", "content_type", "version", "written_by", "updated_at", "deleted_at"]
    list_filter = ["room__project", "content_type"]
    search_fields = ["path", "written_by", "sha256"]
    # Contents change only through actions (blob swap, events); the admin shows, it does not edit.
    readonly_fields = [f.name for f in StoredFile._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
