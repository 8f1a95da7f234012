"""Email into rooms: the addresses a MailWorker service answers (`Mailbox`), every message received
(`InboundMessage`, unique per project by its Message-ID, so a webhook delivered twice is stored
once), the reply to it (`OutboundMessage`, at most one per inbound message) and which room thread
each Message-ID of a conversation belongs to (`MailThreadLink`).
"""

from typing import Any

from django.db import models

from rooms.models import Project, Room


class Mailbox(models.Model):
    """An address a MailWorker service answers. Mail to `local@domain` goes to `room`; with
    `plus_rooms`, mail to `local+other-room@domain` goes to the room `other-room` (created on
    first use)."""

    service = models.ForeignKey("agents.Service", on_delete=models.CASCADE, related_name="mailboxes")
    address = models.EmailField(unique=True, help_text="Lower-case, without a +tag: support@mail.example.com")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="mailboxes")
    plus_rooms = models.BooleanField(default=True, help_text="Route local+room@domain to that room.")
    open = models.BooleanField(default=False, help_text="Answer anyone. Otherwise only the allowed senders.")
    allowed_senders = models.TextField(
        blank=True, help_text="One per line: an address (bob@example.com) or a domain (@example.com)."
    )
    rate_per_hour = models.PositiveIntegerField(
        null=True, blank=True, help_text="Messages one sender may send per hour. Empty: MESHSITE_MAIL_RATE_PER_HOUR."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.address

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.address = self.address.strip().lower()
        super().save(*args, **kwargs)

    @property
    def project_id(self) -> int:
        return int(self.room.project_id)

    def allowed_list(self) -> list[str]:
        return [line.strip().lower() for line in self.allowed_senders.splitlines() if line.strip()]


class InboundMessage(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"  # stored, waiting for the MailWorker
        PROCESSING = "processing"
        REPLIED = "replied"
        IGNORED = "ignored"  # stored for the record, never answered (loop safety; `reason` says why)
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="inbound_mail")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.SET_NULL, null=True, related_name="inbound")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="inbound_mail")
    thread = models.ForeignKey("threads.Thread", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message_key = models.CharField(
        max_length=255, help_text="The Message-ID, or (without one) a key derived from the message's content."
    )
    esp = models.CharField(max_length=32, help_text="Which webhook received it: mailgun, postmark, raw.")
    sender = models.CharField(max_length=320, help_text="The From address (lower-case).")
    sender_name = models.CharField(max_length=200, blank=True)
    reply_to = models.CharField(max_length=320, blank=True)
    recipient = models.CharField(max_length=320, help_text="The address it was routed by.")
    subject = models.CharField(max_length=998, blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    text = models.TextField(blank=True, help_text="The body as text (HTML-only mail converted).")
    attachments = models.JSONField(default=list, blank=True, help_text="[{path, name, mime_type, size}]")
    eml_path = models.CharField(max_length=1024, help_text="The raw message in the room's storage.")
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["project", "message_key"], name="unique_inbound_message_key")]
        indexes = [models.Index(fields=["mailbox", "sender", "received_at"])]

    def __str__(self) -> str:
        return f"{self.sender}: {self.subject[:60]}"

    def to_record(self) -> dict[str, Any]:
        """What the MailWorker is given (docs/mail.md "The email record")."""
        return {
            "id": self.pk,
            "message_id": self.message_key,
            "from": self.sender,
            "from_name": self.sender_name,
            "reply_to": self.reply_to or self.sender,
            "to": self.recipient,
            "subject": self.subject,
            "text": self.text,
            "attachments": self.attachments,
            "eml_path": self.eml_path,
            "thread_id": self.thread_id,
            "room": self.room.name,
        }


class OutboundMessage(models.Model):
    """The reply to one inbound message. Composed (by the MailWorker) before it is sent, so a task
    that runs again after a crash sends the same message, with the same Message-ID, and never
    asks the agent twice."""

    class Status(models.TextChoices):
        COMPOSED = "composed"
        SENT = "sent"
        FAILED = "failed"

    inbound = models.OneToOneField(InboundMessage, on_delete=models.CASCADE, related_name="reply")
    message_id = models.CharField(max_length=255, unique=True)
    from_address = models.CharField(max_length=320)
    to_address = models.CharField(max_length=320)
    subject = models.CharField(max_length=998)
    text = models.TextField()
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    attachments = models.JSONField(default=list, blank=True, help_text="Room storage paths.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPOSED)
    error = models.TextField(blank=True)
    usage_id = models.BigIntegerField(null=True, blank=True, help_text="Its ledger row (observability.UsageRecord).")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"to {self.to_address}: {self.subject[:60]}"


class MailThreadLink(models.Model):
    """A Message-ID (received or sent) and the room thread of its conversation: a reply names
    earlier messages in `In-Reply-To`/`References`, which finds the thread."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=255)
    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "message_id"], name="unique_mail_thread_link")]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.thread_id}"
