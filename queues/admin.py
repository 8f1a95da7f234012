from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Queue, QueueMessage
from .selectors import queue_stats


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "room", "depth", "max_deliveries", "visibility_timeout", "backoff_base", "backoff_cap"]
    list_filter = ["room__project"]
    search_fields = ["name", "room__name"]
    readonly_fields = ["room", "name", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created on first use

    @admin.display(description="visible / in flight / delayed / dead")
    def depth(self, queue: Queue) -> str:
        stats = queue_stats(queue.room_id, queue.name)
        return f"{stats['visible']} / {stats['in_flight']} / {stats['delayed']} / {stats['dead']}"


@admin.register(QueueMessage)
class QueueMessageAdmin(admin.ModelAdmin):
    """Messages are looked at here, not edited: changing a row under a consumer's lease would
    break the queue's guarantees. Deleting one drops it (as an ack would)."""

    list_display = ["id", "room", "queue", "sent_by", "sent_at", "visible_at", "attempt", "received_by"]
    list_filter = ["room__project", "queue"]
    search_fields = ["id", "queue", "sent_by"]
    readonly_fields = [field.name for field in QueueMessage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
