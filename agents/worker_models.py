"""Tables of background work: task statistics (the task decorator's), Celery worker heartbeats,
Worker concurrency slots and the record of processed queue messages.

Imported by `agents.models` so Django and migrations see them; kept apart because they belong to
the Celery side of the agents app, not to services and dispatches.
"""

from typing import Any

from django.db import models

from rooms.models import Room

from .models import Service


class TaskStat(models.Model):
    """Counters of one Celery task (by its stable name), kept by `observability.tasks.background_task`."""

    name = models.CharField(max_length=200, unique=True)
    runs = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveBigIntegerField(default=0)
    total_seconds = models.FloatField(default=0.0)
    max_seconds = models.FloatField(default=0.0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def mean_seconds(self) -> float:
        return self.total_seconds / self.runs if self.runs else 0.0


class CeleryWorkerBeat(models.Model):
    """One Celery worker process (by its node name) and when it last said it was alive."""

    hostname = models.CharField(max_length=200, unique=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return self.hostname


class WorkerSlot(models.Model):
    """One of a Worker service's `concurrency` slots in a room. A task processes messages only while
    it holds a slot: claimed with a conditional update, leased until `lease_until` (extended while
    it works), so a killed Celery worker's slot frees itself when its lease runs out."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="worker_slots")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="worker_slots")
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "room", "slot"], name="unique_worker_slot")]

    def __str__(self) -> str:
        return f"{self.service_id}/{self.room_id}#{self.slot}"


class WorkerMessage(models.Model):
    """A queue message a Worker processed: written in the same transaction as the queue's ack, so
    "done" and "acknowledged" are one fact, and a message is never recorded done twice."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="worker_messages")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="worker_messages")
    queue = models.CharField(max_length=200)
    message_id = models.CharField(max_length=64)
    attempt = models.PositiveIntegerField(default=1)
    result = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["-finished_at"]
        constraints = [
            models.UniqueConstraint(fields=["service", "room", "message_id"], name="unique_worker_message"),
        ]

    def __str__(self) -> str:
        return f"{self.queue}/{self.message_id}"

    def to_record(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "message_id": self.message_id,
            "attempt": self.attempt,
            "result": self.result,
            "finished_at": self.finished_at.isoformat(),
        }


class WorkerService(Service):
    """The admin's "Workers": services bound to a queue, with their queue depths."""

    class Meta:
        proxy = True
        verbose_name = "worker"
