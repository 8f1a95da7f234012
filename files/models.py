"""Files stored in a room: one row per path, the contents in a Django storage backend.

The row is the truth: a file exists when its row is live and points at a blob. Blobs are written
under names that come only from the room id and a random uuid (never from the user's path), so
concurrent writers never share a blob and a reader never sees a half-written one; the row is
swapped to the new blob in a transaction and the old blob deleted after commit.

A deleted (or moved-away) path keeps its row as a tombstone so that `version` keeps increasing per
path across delete and re-create: a watcher can drop any event older than what it has seen.
"""

from typing import Any

from django.db import models

from rooms.models import Room
from rooms.timestamps import iso_z


class StoredFileQuerySet(models.QuerySet["StoredFile"]):
    def live(self) -> "StoredFileQuerySet":
        return self.filter(deleted_at__isnull=True)

    def in_room(self, room: Room | int) -> "StoredFileQuerySet":
        return self.filter(room_id=room.pk if isinstance(room, Room) else room)


class StoredFile(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="stored_files")
    path = models.CharField(max_length=1024, help_text="Normalised (NFC) path, relative to the room.")
    size = models.BigIntegerField(default=0)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    sha256 = models.CharField(max_length=64, blank=True)
    version = models.PositiveBigIntegerField(default=0, help_text="Increases on every change of this path.")
    written_by = models.CharField(max_length=200, blank=True, help_text="Identity of the last writer.")
    blob_name = models.CharField(max_length=255, blank=True, help_text="Name in the storage backend.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = StoredFileQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "path"], name="unique_stored_file_path")]
        ordering = ["room_id", "path"]

    def __str__(self) -> str:
        return self.path

    def to_record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "content_type": self.content_type,
            "sha256": self.sha256,
            "version": self.version,
            "written_by": self.written_by,
            "created_at": iso_z(self.created_at),
            "updated_at": iso_z(self.updated_at),
        }
