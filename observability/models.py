"""The call ledger: one row per routed tool call, participant-hosted or built-in."""

from typing import Any

from django.db import models


class ToolCall(models.Model):
    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"
        TIMEOUT = "timeout"
        CANCELLED = "cancelled"
        # the caller left before the answer; nobody received it
        ABANDONED = "abandoned"
        # refused before routing: grants, arguments, rate or size (error_code says which)
        REFUSED = "refused"

    call_id = models.CharField(max_length=40, db_index=True)
    # Ledger rows are history and billing: they outlive rooms, so no database-level constraint.
    project = models.ForeignKey("rooms.Project", on_delete=models.DO_NOTHING, db_constraint=False)
    room = models.ForeignKey("rooms.Room", on_delete=models.DO_NOTHING, db_constraint=False)
    room_name = models.CharField(max_length=63)
    toolkit = models.CharField(max_length=64)
    tool = models.CharField(max_length=64)
    caller_id = models.CharField(max_length=24)
    caller_identity = models.CharField(max_length=200)
    on_behalf_of_id = models.CharField(max_length=24, blank=True)
    on_behalf_of_identity = models.CharField(max_length=200, blank=True)
    host_id = models.CharField(max_length=24, blank=True, help_text="Empty for built-in toolkits.")
    host_identity = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(db_index=True)
    latency_ms = models.FloatField()
    request_bytes = models.PositiveIntegerField()
    response_bytes = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    cost = models.DecimalField(max_digits=18, decimal_places=9, default=0)
    trace_id = models.CharField(max_length=32, blank=True, db_index=True)
    span_id = models.CharField(max_length=16, blank=True)
    parent_span_id = models.CharField(max_length=16, blank=True)
    node = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["project", "started_at"]),
            models.Index(fields=["room", "started_at"]),
            models.Index(fields=["toolkit", "tool"]),
        ]

    def __str__(self) -> str:
        return f"{self.toolkit}.{self.tool} by {self.caller_identity} ({self.status})"


class UsageRecord(models.Model):
    """Metered consumption (LLM tokens now; embeddings, speech and email as they land), attributed
    to who consumed it and why: the participant and agent, the thread and turn, the trace."""

    class Kind(models.TextChoices):
        LLM = "llm"
        EMBEDDING = "embedding"
        SPEECH = "speech"
        EMAIL = "email"

    project = models.ForeignKey("rooms.Project", on_delete=models.DO_NOTHING, db_constraint=False)
    room = models.ForeignKey("rooms.Room", on_delete=models.DO_NOTHING, db_constraint=False)
    room_name = models.CharField(max_length=63)
    participant_id = models.CharField(max_length=24)
    identity = models.CharField(max_length=200)
    agent = models.CharField(max_length=64, blank=True, help_text="The agent, as its token vouches.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    quantity = models.FloatField(default=0, help_text="For non-token usage: seconds of speech, emails sent…")
    thread_id = models.CharField(max_length=24, blank=True)
    turn_id = models.CharField(max_length=64, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, db_index=True)
    span_id = models.CharField(max_length=16, blank=True)
    cost = models.DecimalField(max_digits=18, decimal_places=9, default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "created_at"]), models.Index(fields=["room", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.model} by {self.identity}"

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "kind": self.kind,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "quantity": self.quantity,
            "participant_id": self.participant_id,
            "identity": self.identity,
            "agent": self.agent or None,
            "thread_id": self.thread_id or None,
            "turn_id": self.turn_id or None,
            "trace_id": self.trace_id,
            "cost": str(self.cost),
        }
