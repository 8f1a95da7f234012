"""Durable room queues: one row per message, claimed with a lease (docs/queues.md).

A message is *visible* when `visible_at` has passed; receiving it sets a fresh `receipt`, bumps
`attempt` and pushes `visible_at` out by the visibility timeout (the lease). Acknowledging deletes
the row; a lease that runs out simply makes the row visible again, so nothing unacknowledged is
lost when a consumer dies. Queue names are plain strings on the message (a queue exists while it
has messages or settings); `Queue` holds the optional per-queue settings, created on first receive.
"""

import secrets
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from rooms.models import Room
from rooms.timestamps import iso_z

DEFAULT_MAX_DELIVERIES = 5
DEFAULT_VISIBILITY_TIMEOUT = 30.0
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 300.0


def new_message_id() -> str:
    return "m_" + secrets.token_hex(10)


class Queue(models.Model):
    """Per-queue settings; a queue without a row uses the defaults."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=120)
    max_deliveries = models.PositiveIntegerField(
        default=DEFAULT_MAX_DELIVERIES,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Deliveries (nacked or timed out) before a message moves to <name>.dlq. "
        "Dead-letter queues never dead-letter further.",
    )
    visibility_timeout = models.FloatField(
        default=DEFAULT_VISIBILITY_TIMEOUT,
        validators=[MinValueValidator(0.01), MaxValueValidator(43200)],
        help_text="Seconds a received message stays invisible when the receiver names no timeout.",
    )
    backoff_base = models.FloatField(
        default=DEFAULT_BACKOFF_BASE,
        validators=[MinValueValidator(0), MaxValueValidator(86400)],
        help_text="Seconds before the first retry of a nacked message; doubled on each further delivery.",
    )
    backoff_cap = models.FloatField(
        default=DEFAULT_BACKOFF_CAP,
        validators=[MinValueValidator(0), MaxValueValidator(86400)],
        help_text="The longest retry delay, in seconds.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room_id", "name"]
        constraints = [models.UniqueConstraint(fields=["room", "name"], name="unique_queue_name")]

    def __str__(self) -> str:
        return self.name

    def backoff(self, attempt: int) -> float:
        """The retry delay after delivery number `attempt` (1, 2, ...) failed."""
        return float(min(self.backoff_cap, self.backoff_base * 2 ** min(max(attempt - 1, 0), 30)))

    def settings_record(self) -> dict[str, Any]:
        return {
            "max_deliveries": self.max_deliveries,
            "visibility_timeout": self.visibility_timeout,
            "backoff_base": self.backoff_base,
            "backoff_cap": self.backoff_cap,
        }


class QueueMessage(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_message_id)
    # Indexed by the claim index, which starts with it: one index less to write per message.
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="queue_messages", db_index=False)
    queue = models.CharField(max_length=120)
    body = models.JSONField()
    sent_by = models.CharField(max_length=200, help_text="Identity of the sender.")
    sent_at = models.DateTimeField()
    visible_at = models.DateTimeField()
    attempt = models.PositiveIntegerField(default=0, help_text="Deliveries so far in this queue.")
    # Empty while nobody holds a lease (never received, nacked, or dead-lettered).
    receipt = models.CharField(max_length=48, blank=True, default="")
    received_by = models.CharField(max_length=200, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    # Set when the message moved to a dead-letter queue: the deliveries it had before.
    dead_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["visible_at", "sent_at"]
        # The claim's scan, in its order: `WHERE room, queue, visible_at <= now ORDER BY visible_at, sent_at`.
        indexes = [models.Index(fields=["room", "queue", "visible_at", "sent_at"], name="queue_message_claim_order")]

    def __str__(self) -> str:
        return self.id

    def state(self, now: Any) -> str:
        if self.visible_at <= now:
            return "visible"
        return "in_flight" if self.receipt else "delayed"

    def to_record(self, now: Any) -> dict[str, Any]:
        """What `peek` shows: never the receipt."""
        return {
            "message_id": self.id,
            "queue": self.queue,
            "body": self.body,
            "sent_by": self.sent_by,
            "sent_at": iso_z(self.sent_at),
            "visible_at": iso_z(self.visible_at),
            "state": self.state(now),
            "attempt": self.attempt,
            "last_error": self.last_error,
            "dead_attempts": self.dead_attempts,
        }
