from django.contrib import admin

from .models import Thread, ThreadMessage


class ThreadMessageInline(admin.TabularInline):
    model = ThreadMessage
    extra = 0
    fields = ("seq", "author_identity", "author_role", "parts", "created_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "room", "created_by", "last_seq", "updated_at"]
    list_filter = ["room__project"]
    search_fields = ["id", "title", "created_by"]
    readonly_fields = ["id", "room", "created_by", "created_at", "updated_at", "last_seq"]
    inlines = [ThreadMessageInline]
