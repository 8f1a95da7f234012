"""Admin pages of background work: Workers with their queue depths, Celery worker health, task
statistics, and the messages Workers processed. Queue depths come from the queues app's selectors."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from queues.selectors import queue_stats

from .models import CeleryWorkerBeat, TaskStat, WorkerMessage, WorkerService, WorkerSlot
from .workers import worker_services


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WorkerService)
class WorkerServiceAdmin(ReadOnly):
    """One row per Worker service; edit the service itself under "Services"."""

    list_display = ["name", "project", "queue", "concurrency", "depths", "busy_slots", "enabled"]
    list_filter = ["project", "enabled"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        ids = worker_services().values_list("pk", flat=True)
        return WorkerService.objects.filter(pk__in=list(ids)).select_related("project", "room")

    @admin.display(description="queue")
    def queue(self, service: WorkerService) -> str:
        return str(service.config.get("queue", ""))

    @admin.display(description="concurrency")
    def concurrency(self, service: WorkerService) -> int:
        return int(service.config.get("concurrency", 1))

    @admin.display(description="visible / in flight / delayed / dead, per room")
    def depths(self, service: WorkerService) -> str:
        queue = str(service.config.get("queue", ""))
        rooms = [service.room] if service.room else list(service.project.rooms.order_by("name")[:20])
        shown = []
        for room in rooms:
            stats = queue_stats(room.pk, queue)
            if any(stats.values()) or service.room:
                shown.append(f"{room.name}: {stats['visible']}/{stats['in_flight']}/{stats['delayed']}/{stats['dead']}")
        return "; ".join(shown) or "empty"

    @admin.display(description="busy slots")
    def busy_slots(self, service: WorkerService) -> int:
        now = timezone.now()
        return WorkerSlot.objects.filter(service_id=service.pk, lease_until__gt=now).exclude(holder="").count()


@admin.register(CeleryWorkerBeat)
class CeleryWorkerBeatAdmin(ReadOnly):
    list_display = ["hostname", "health", "pid", "started_at", "beat_at", "stopped_at"]

    @admin.display(description="health")
    def health(self, beat: CeleryWorkerBeat) -> str:
        if beat.stopped_at is not None:
            return "stopped"
        stale = timezone.now() - timedelta(seconds=3 * settings.MESHSITE_WORKER_SWEEP_SECONDS + 5)
        return "alive" if beat.beat_at >= stale else "silent (killed or stuck?)"


@admin.register(TaskStat)
class TaskStatAdmin(ReadOnly):
    list_display = ["name", "runs", "failures", "mean", "max_seconds", "last_run_at", "last_failed_at", "last_error"]

    @admin.display(description="mean seconds")
    def mean(self, stat: TaskStat) -> str:
        return f"{stat.mean_seconds:.3f}"


@admin.register(WorkerMessage)
class WorkerMessageAdmin(ReadOnly):
    list_display = ["message_id", "queue", "service", "room", "attempt", "started_at", "finished_at"]
    list_filter = ["service", "queue"]
    search_fields = ["message_id"]
