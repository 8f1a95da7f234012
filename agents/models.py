"""Services (the admin's "deployments") and their dispatches into rooms."""

from collections.abc import Sequence
from typing import Any

from django.db import models
from django.db.models import Q

from rooms.models import Project, Room


class ServiceQuerySet(models.QuerySet["Service"]):
    def callable_in(self, room: Room) -> "ServiceQuerySet":
        """Enabled services of the room's project that serve every room or this one."""
        return self.filter(project_id=room.project_id, enabled=True).filter(Q(room__isnull=True) | Q(room=room))


class Service(models.Model):
    class Kind(models.TextChoices):
        PYTHON = "python", "Python class run by the agent host"
        WEBHOOK = "webhook", "External URL that joins by itself"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="services")
    room = models.ForeignKey(
        Room,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="services",
        help_text="Empty: the service can be called into any room of the project.",
    )
    name = models.SlugField(max_length=63, help_text="The agent's name and participant identity.")
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PYTHON)
    class_path = models.CharField(max_length=300, blank=True, help_text="e.g. agents.demo.WordCounter")
    config = models.JSONField(default=dict, blank=True, help_text="Keyword arguments for the class.")
    url = models.URLField(blank=True, help_text="Webhook services: where the signed invitation is POSTed.")
    secret = models.CharField(max_length=100, blank=True, help_text="Webhook services: the HMAC signing secret.")
    input_schema = models.JSONField(null=True, blank=True)
    output_schema = models.JSONField(null=True, blank=True)
    allow_multiple = models.BooleanField(default=False, help_text="Allow several instances in one room.")
    always_on = models.BooleanField(
        default=False,
        help_text="Keep one instance in its room (needs a room): agent hosts start it whenever none is running.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ServiceQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_service_name")]
        ordering = ["project_id", "name"]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "kind": self.kind,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "allow_multiple": self.allow_multiple,
        }


class DispatchQuerySet(models.QuerySet["Dispatch"]):
    def active(self, stale_after_seconds: float) -> "DispatchQuerySet":
        """Queued, or claimed/running by a host that beat recently."""
        return self._live([Dispatch.Status.CLAIMED, Dispatch.Status.RUNNING], stale_after_seconds)

    def live(self, stale_after_seconds: float) -> "DispatchQuerySet":
        """`active`, or stopping (its agent is still in the room, finishing its asks)."""
        return self._live(Dispatch.HOSTED_STATUSES, stale_after_seconds)

    def unfinished(self) -> "DispatchQuerySet":
        """Not ended yet, whatever the heartbeat says: what a stop can still act on."""
        return self.filter(status__in=[Dispatch.Status.QUEUED, *Dispatch.HOSTED_STATUSES])

    def _live(self, hosted: Sequence[str], stale_after_seconds: float) -> "DispatchQuerySet":
        from datetime import timedelta

        from django.utils import timezone

        fresh = timezone.now() - timedelta(seconds=stale_after_seconds)
        return self.filter(Q(status=Dispatch.Status.QUEUED) | Q(status__in=hosted, heartbeat_at__gte=fresh))


class Dispatch(models.Model):
    """One invitation of a service into a room (`agents.call`), and what became of it."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        CLAIMED = "claimed"
        RUNNING = "running"
        STOPPING = "stopping"  # asked to stop; its host cancels the agent, which finishes its asks
        STOPPED = "stopped"
        FAILED = "failed"
        EXPIRED = "expired"

    # claimed by a host (or, without one, joined by itself) and not ended yet
    HOSTED_STATUSES = [Status.CLAIMED, Status.RUNNING, Status.STOPPING]

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="dispatches")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="dispatches")
    identity = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict, blank=True)
    requested_by = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    host = models.CharField(max_length=100, blank=True)
    participant_id = models.CharField(max_length=24, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = DispatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]
        verbose_name_plural = "dispatches"

    def __str__(self) -> str:
        return f"{self.service.name} → {self.room} ({self.status})"

    def to_record(self) -> dict[str, Any]:
        return {
            "dispatch_id": self.pk,
            "service": self.service.name,
            "identity": self.identity,
            "status": self.status,
            "participant_id": self.participant_id or None,
            "error": self.error or None,
        }


# Background work (Celery): defined apart, imported here so Django registers them.
from .worker_models import CeleryWorkerBeat, TaskStat, WorkerMessage, WorkerService, WorkerSlot  # noqa: E402

__all__ = [
    "CeleryWorkerBeat",
    "Dispatch",
    "Service",
    "TaskStat",
    "WorkerMessage",
    "WorkerService",
    "WorkerSlot",
]
