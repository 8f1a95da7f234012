"""Projects (tenants), their API keys and members, rooms, and the participants present in them."""

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from meshsite_client.protocol import ROOM_NAME_RE

from rooms.timestamps import iso_z

room_name_validator = RegexValidator(
    ROOM_NAME_RE, "Room names are 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'."
)
API_KEY_PREFIX = "msk_"


class Project(models.Model):
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects", blank=True
    )

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


def hash_api_key(raw: str) -> str:
    # Keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate_raw() -> str:
        return API_KEY_PREFIX + secrets.token_urlsafe(32)


class RoomQuerySet(models.QuerySet["Room"]):
    def for_project(self, project: Project) -> "RoomQuerySet":
        return self.filter(project=project)


class Room(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=63, validators=[room_name_validator])
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_room_name")]
        ordering = ["project_id", "name"]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"

    @property
    def group_name(self) -> str:
        return f"room.{self.pk}"


class ParticipantQuerySet(models.QuerySet["Participant"]):
    def present(self) -> "ParticipantQuerySet":
        return self.filter(left_at__isnull=True)


class Participant(models.Model):
    """One live connection. Rows stay after the connection ends (left_at set) for history."""

    class Role(models.TextChoices):
        USER = "user"
        AGENT = "agent"
        SERVICE = "service"

    id = models.CharField(primary_key=True, max_length=24)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    identity = models.CharField(max_length=200)
    role = models.CharField(max_length=16, choices=Role.choices)
    name = models.CharField(max_length=200, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    agent = models.CharField(
        max_length=64,
        blank=True,
        help_text="The agent this participant runs, as its token vouches (never self-declared).",
    )
    # The token's grants, for the server's own decisions about other participants (who may approve
    # spending past a soft budget). Never in `to_record`: a participant's grants are not public.
    grants = models.JSONField(default=dict, blank=True)
    node = models.CharField(max_length=64, help_text="The server process holding the connection.")
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    left_reason = models.CharField(max_length=32, blank=True)

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        # One identity may hold several connections (browser tabs, CLI commands); a singleton
        # token's newer connection replaces the older one instead (see do_join).
        indexes = [
            models.Index(fields=["room", "left_at"]),
            models.Index(fields=["node", "left_at"]),
            models.Index(fields=["room", "identity", "left_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.identity} ({self.id})"

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "identity": self.identity,
            "role": self.role,
            "name": self.name,
            "attributes": self.attributes,
            "agent": self.agent or None,
            "joined_at": iso_z(self.joined_at),
        }


class HostedToolkit(models.Model):
    """A toolkit registered by a participant; deleted when it is unregistered or its host leaves."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="toolkits")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="toolkits")
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    public = models.BooleanField(default=True)
    tools = models.JSONField(default=list)
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "name"], condition=Q(public=True), name="unique_public_toolkit"),
            models.UniqueConstraint(fields=["participant", "name"], name="unique_hosted_toolkit"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.participant_id}"

    def to_record(self, identity: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "public": self.public,
            "participant_id": self.participant_id,
            "participant_identity": identity,
            "tools": self.tools,
        }
