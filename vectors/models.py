"""The room's vector store: chunks of text with their source and embedding, and the Indexer's jobs.

A chunk's source says where its text came from and so who may retrieve it (vectors/access.py):
`file` (a path in room storage: storage read grants), `thread` (a thread id: threads read
grants), or `custom` (upserted through the `vectors` toolkit: any caller of `vectors`/`rag`).
`file` and `thread` chunks are written only by the Indexer.
"""

import secrets

from django.db import models

from rooms.models import Room

from .fields import EmbeddingField

DEFAULT_COLLECTION = "room"


class SourceKind(models.TextChoices):
    FILE = "file", "Room storage file"
    THREAD = "thread", "Thread message"
    CUSTOM = "custom", "Upserted through the vectors toolkit"


class ChunkQuerySet(models.QuerySet["Chunk"]):
    def in_room(self, room_id: int) -> "ChunkQuerySet":
        return self.filter(room_id=room_id)

    def of_source(self, kind: str, ref: str) -> "ChunkQuerySet":
        return self.filter(source_kind=kind, source_ref=ref)


class Chunk(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="chunks")
    collection = models.CharField(max_length=64, default=DEFAULT_COLLECTION)
    source_kind = models.CharField(max_length=8, choices=SourceKind.choices)
    source_ref = models.CharField(max_length=1024, help_text="Path, thread id, or a custom source name.")
    # a thread message's seq; for files and custom sources, empty
    source_part = models.CharField(max_length=64, blank=True, default="")
    version = models.CharField(max_length=128, blank=True, default="", help_text="Version of the source indexed.")
    ordinal = models.PositiveIntegerField(default=0, help_text="Position of the chunk in its source.")
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    model = models.CharField(max_length=200, help_text="The embedding model; a search only compares its own.")
    dims = models.PositiveSmallIntegerField()
    embedding = EmbeddingField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChunkQuerySet.as_manager()

    class Meta:
        ordering = ["room", "source_kind", "source_ref", "source_part", "ordinal"]
        indexes = [
            models.Index(fields=["room", "collection", "model"], name="vectors_chunk_room_model"),
            models.Index(fields=["room", "source_kind", "source_ref"], name="vectors_chunk_source"),
        ]

    def __str__(self) -> str:
        return f"{self.source_kind}:{self.source_ref}#{self.ordinal}"

    @property
    def source(self) -> str:
        """`file:docs/a.pdf`, `thread:t_…#3`, `custom:name`: how search results name a source."""
        tail = f"#{self.source_part}" if self.source_part else ""
        return f"{self.source_kind}:{self.source_ref}{tail}"


def new_job_id() -> str:
    return "ix_" + secrets.token_hex(8)


class IndexJob(models.Model):
    """One unit of the Indexer's work: (re)index or remove one source at one version. Unique per
    (room, source, version, action), which makes enqueuing the same change twice a no-op."""

    class Action(models.TextChoices):
        INDEX = "index"
        REMOVE = "remove"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        SKIPPED = "skipped"  # superseded (a newer version, a delete) or already indexed
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=24, default=new_job_id)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="index_jobs")
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.INDEX)
    source_kind = models.CharField(max_length=8, choices=SourceKind.choices)
    source_ref = models.CharField(max_length=1024)
    source_part = models.CharField(max_length=64, blank=True, default="")
    version = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    chunks = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True, default="", help_text="Why it was skipped or failed.")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "source_kind", "source_ref", "source_part", "version", "action"],
                name="vectors_one_job_per_source_version",
            )
        ]
        indexes = [models.Index(fields=["room", "status"], name="vectors_job_room_status")]

    def __str__(self) -> str:
        return f"{self.action} {self.source_kind}:{self.source_ref}@{self.version} ({self.status})"
