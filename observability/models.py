"""The ledger: one row per routed tool call (`ToolCall`) and per metered use of a model
(`UsageRecord`), with the price table (`ModelPrice`) and the budgets (`Budget`, `Reservation`) that
cost them. Every cost is a Decimal in `settings.MESHSITE_CURRENCY` (docs/billing.md)."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .money import money_text


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
    # No index of their own either: the (project, started_at) and (room, started_at) indexes serve
    # every lookup by project or room, and each index is written on every routed call.
    project = models.ForeignKey("rooms.Project", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False)
    room = models.ForeignKey("rooms.Room", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False)
    room_name = models.CharField(max_length=63)
    toolkit = models.CharField(max_length=64)
    tool = models.CharField(max_length=64)
    caller_id = models.CharField(max_length=24)
    caller_identity = models.CharField(max_length=200)
    caller_agent = models.CharField(max_length=64, blank=True, help_text="The caller's agent, as its token vouches.")
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
    cost = models.DecimalField(
        max_digits=18, decimal_places=9, default=0, help_text="As the host reported it (result._meta.cost)."
    )
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


def server_currency() -> str:
    return str(settings.MESHSITE_CURRENCY)


class Kind(models.TextChoices):
    LLM = "llm"
    EMBEDDING = "embedding"
    SPEECH = "speech"
    EMAIL = "email"


class ModelPrice(models.Model):
    """What one model costs from `effective_from` on. A price change is a new row with a later
    `effective_from`: the usage recorded before it keeps the row it was charged at."""

    provider = models.CharField(max_length=64, blank=True, help_text="openai, anthropic… (informative).")
    model = models.CharField(
        max_length=200,
        help_text="The model name as usage reports it, or a pattern (gpt-4o-mini*) for its dated versions. "
        "An exact name wins over a pattern, and a longer pattern over a shorter one.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LLM)
    input_per_million = models.DecimalField(
        max_digits=18, decimal_places=9, default=0, help_text="Per million input tokens."
    )
    cached_input_per_million = models.DecimalField(
        max_digits=18,
        decimal_places=9,
        null=True,
        blank=True,
        help_text="Per million cached input tokens. Empty: the input price.",
    )
    output_per_million = models.DecimalField(
        max_digits=18, decimal_places=9, default=0, help_text="Per million output tokens."
    )
    unit_price = models.DecimalField(
        max_digits=18,
        decimal_places=9,
        default=0,
        help_text="Per unit of `quantity` (audio minutes, characters, emails…).",
    )
    unit = models.CharField(max_length=32, blank=True, help_text="What one unit of quantity is: minute, character…")
    currency = models.CharField(max_length=3, default=server_currency)
    effective_from = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=200, blank=True, help_text="Where the figures come from, and when.")

    class Meta:
        ordering = ["kind", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "model", "effective_from"], name="one_price_per_model_and_date")
        ]

    def __str__(self) -> str:
        return f"{self.model} ({self.kind}) from {self.effective_from:%Y-%m-%d}"

    @property
    def is_pattern(self) -> bool:
        return any(c in self.model for c in "*?[")

    def clean(self) -> None:
        if self.currency != settings.MESHSITE_CURRENCY:
            raise ValidationError(
                {
                    "currency": f"Costs on this server are in {settings.MESHSITE_CURRENCY} (MESHSITE_CURRENCY): "
                    "convert the price."
                }
            )


class UsageRecord(models.Model):
    """Metered consumption (LLM tokens, embeddings, speech, email), attributed to who consumed it
    and why: the participant and agent, the thread and turn, the trace. Priced when recorded."""

    Kind = Kind

    project = models.ForeignKey("rooms.Project", on_delete=models.DO_NOTHING, db_constraint=False)
    # Empty for usage outside any room (a project API key on the metering proxy).
    room = models.ForeignKey("rooms.Room", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True)
    room_name = models.CharField(max_length=63, blank=True)
    participant_id = models.CharField(max_length=24, blank=True)
    identity = models.CharField(max_length=200)
    agent = models.CharField(max_length=64, blank=True, help_text="The agent, as its token vouches.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    quantity = models.FloatField(default=0, help_text="For non-token usage, in its price's unit: minutes, emails…")
    thread_id = models.CharField(max_length=24, blank=True)
    turn_id = models.CharField(max_length=64, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, db_index=True)
    span_id = models.CharField(max_length=16, blank=True)
    # Set when a built-in tool spent it (rag.search embedding its query): that call's ledger row
    # (ToolCall.call_id) and its `toolkit.tool`. The cost is counted here only, never on the
    # call's row too (docs/billing.md, "What a tool call cost").
    call_id = models.CharField(max_length=40, blank=True, db_index=True)
    tool = models.CharField(max_length=129, blank=True, help_text="toolkit.tool of the built-in call that spent it.")
    cost = models.DecimalField(max_digits=18, decimal_places=9, default=0)
    # The price it was charged at: a price row that was charged cannot be deleted (nor, in the
    # admin, edited). Unpriced: no price was known for the model at record time; cost is 0 then.
    price = models.ForeignKey(ModelPrice, on_delete=models.PROTECT, null=True, blank=True, related_name="usage")
    priced = models.BooleanField(default=False, db_index=True)
    reservation = models.ForeignKey(
        "Reservation", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage"
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

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
            "participant_id": self.participant_id or None,
            "identity": self.identity,
            "agent": self.agent or None,
            "thread_id": self.thread_id or None,
            "turn_id": self.turn_id or None,
            "trace_id": self.trace_id,
            "call_id": self.call_id or None,
            "tool": self.tool or None,
            "cost": money_text(self.cost),
            "currency": settings.MESHSITE_CURRENCY,
            "priced": self.priced,
            "price_id": self.price_id,
            "reservation_id": self.reservation.public_id if self.reservation else None,
        }


class Budget(models.Model):
    """A spending limit per period for a project, or for one of its rooms. Hard: a reservation
    that would pass it is refused (-32008). Soft: it is granted with `needs_approval`."""

    class Period(models.TextChoices):
        DAY = "day"
        MONTH = "month"

    project = models.ForeignKey("rooms.Project", on_delete=models.CASCADE, related_name="budgets")
    room = models.ForeignKey(
        "rooms.Room",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="budgets",
        help_text="Empty: the whole project.",
    )
    amount = models.DecimalField(max_digits=18, decimal_places=4)
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    hard = models.BooleanField(
        default=True, help_text="Hard: refuse what would pass it. Soft: allow it with an owner's approval."
    )
    active = models.BooleanField(default=True)
    notes = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "room", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "period"],
                condition=models.Q(room__isnull=True),
                name="one_project_budget_per_period",
            ),
            models.UniqueConstraint(
                fields=["project", "room", "period"],
                condition=models.Q(room__isnull=False),
                name="one_room_budget_per_period",
            ),
        ]

    def __str__(self) -> str:
        where = f"room {self.room.name}" if self.room_id and self.room else "project"
        return f"{self.amount} {settings.MESHSITE_CURRENCY} per {self.period} ({where})"

    @property
    def scope(self) -> str:
        return "room" if self.room_id else "project"

    def clean(self) -> None:
        if self.room is not None and self.project_id and self.room.project_id != self.project_id:
            raise ValidationError({"room": "This room belongs to another project."})


class Reservation(models.Model):
    """An amount held against the budgets of a project and room until the usage it was for is
    recorded (settled), released, or it expires."""

    class Status(models.TextChoices):
        HELD = "held"
        SETTLED = "settled"
        RELEASED = "released"
        EXPIRED = "expired"

    class Decision(models.TextChoices):
        """An owner's answer to `usage.request_approval` (docs/billing.md, Soft budgets)."""

        APPROVED = "approved"
        DENIED = "denied"
        UNANSWERED = "unanswered"  # owners were asked; none answered in time
        NO_OWNER = "no_owner"  # no owner who can be asked was in the room

    public_id = models.CharField(max_length=24, unique=True)
    project = models.ForeignKey("rooms.Project", on_delete=models.DO_NOTHING, db_constraint=False)
    room = models.ForeignKey("rooms.Room", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True)
    room_name = models.CharField(max_length=63, blank=True)
    participant_id = models.CharField(max_length=24, blank=True)
    identity = models.CharField(max_length=200)
    agent = models.CharField(max_length=64, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=9)
    kind = models.CharField(max_length=16, blank=True)
    model = models.CharField(max_length=200, blank=True)
    needs_approval = models.BooleanField(default=False)
    # Who may approve it (usage.approve on this scope): "project" when a project budget is passed
    approval_scope = models.CharField(max_length=8, blank=True)
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    decided_by = models.CharField(max_length=200, blank=True, help_text="The owner who decided (identity).")
    decided_by_id = models.CharField(max_length=24, blank=True, help_text="Their participant id.")
    decided_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.public_id}: {self.amount} ({self.status})"


class CostReport(UsageRecord):
    """The admin's cost report (observability/admin.py): a page, not a table of its own."""

    class Meta:
        proxy = True
        verbose_name = "cost report"
        verbose_name_plural = "cost report"
