"""Writes to room storage. Each streams or swaps blobs outside/inside one transaction and, after
commit, sends `file_changed` and the room notification `storage.changed` (to readers only).

Concurrent writes to one path: each writer streams into its own blob first, then swaps the row in
a transaction that locks it; the last to commit wins, versions increase by one per commit, and
the blob it replaced is deleted after commit. A reader holding the old blob open keeps reading
it until deletion (filesystem semantics keep an open file readable even then).
"""

import io
import mimetypes
import re
from typing import IO, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from meshsite.errors import invalid_params, not_found
from rooms.events import send_room_event_on_commit
from rooms.models import Room

from .blobs import delete_blob, save_blob
from .models import StoredFile
from .paths import normalize_path
from .signals import file_changed

DEFAULT_CONTENT_TYPE = "application/octet-stream"
CONTENT_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(;.{0,200})?$"
)
EVENT = "storage.changed"


def clean_content_type(content_type: str | None, path: str) -> str:
    if content_type is None or content_type == "":
        guessed, _encoding = mimetypes.guess_type(path, strict=False)
        return guessed or DEFAULT_CONTENT_TYPE
    if not CONTENT_TYPE_RE.match(content_type) or any(ord(c) < 32 or ord(c) == 127 for c in content_type):
        raise invalid_params(f"content_type {content_type[:80]!r} is not a MIME type like 'text/plain'")
    return content_type


def _locked_row(room: Room, path: str) -> StoredFile:
    """The path's row (live or tombstone) locked for update, created if the path is new."""
    row = StoredFile.objects.select_for_update().filter(room=room, path=path).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return StoredFile.objects.create(room=room, path=path, deleted_at=timezone.now())
    except IntegrityError:  # a concurrent writer created it first: lock theirs
        return StoredFile.objects.select_for_update().get(room=room, path=path)


def _notify(room: Room, row: StoredFile | None, path: str, action: str, version: int, by: str, **extra: Any) -> None:
    """Queues the signal and the room notification for after commit."""
    params: dict[str, Any] = {
        "path": path,
        "action": action,
        "size": row.size if row else None,
        "content_type": row.content_type if row else None,
        "version": version,
        "by": by,
        **extra,
    }
    previous = extra.get("previous_path")
    previous_version = params.pop("previous_version", None)
    # Audience: readers of every path the event names; a move is told to readers of only one end
    # as a deletion or a write, so no one learns a path they may not read.
    if previous is None:
        send_room_event_on_commit(room.pk, EVENT, params, readers_of=["storage", [path]])
    else:
        send_room_event_on_commit(room.pk, EVENT, params, readers_of=["storage", [previous, path]])
        ends = {k: v for k, v in params.items() if k != "previous_path"}
        gone = {**ends, "path": previous, "action": "deleted", "size": None, "content_type": None}
        gone["version"] = previous_version
        send_room_event_on_commit(
            room.pk, EVENT, gone, readers_of=["storage", [previous]], not_readers_of=["storage", [path]]
        )
        arrived = {**ends, "action": "written"}
        send_room_event_on_commit(
            room.pk, EVENT, arrived, readers_of=["storage", [path]], not_readers_of=["storage", [previous]]
        )
    # robust: a failing receiver is logged, and cannot make a committed write look failed.
    transaction.on_commit(
        lambda: file_changed.send(
            sender=StoredFile,
            room=room,
            path=path,
            action=action,
            file=row,
            version=version,
            previous_path=previous,
            by=by,
        ),
        robust=True,
    )


def do_write_file(
    *, room: Room, path: str, content: bytes | IO[bytes], content_type: str | None, written_by: str
) -> StoredFile:
    """Creates or replaces the file at `path` (last writer wins). `content` is read in chunks,
    never whole; past MESHSITE_STORAGE_MAX_BYTES it raises MeshError (payload too large) and
    nothing changes. Authorisation is the caller's (files.access.check_write)."""
    path = normalize_path(path)
    content_type = clean_content_type(content_type, path)
    source = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
    blob_name, size, sha256 = save_blob(room.pk, source)
    committed: list[bool] = []
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))  # runs before the callbacks below
            row = _locked_row(room, path)
            replaced = row.blob_name
            row.size, row.content_type, row.sha256 = size, content_type, sha256
            row.blob_name, row.written_by, row.deleted_at = blob_name, written_by, None
            row.version += 1
            if replaced == "":  # (re)created: its creation time is now
                row.created_at = timezone.now()
            row.save()
            transaction.on_commit(lambda: delete_blob(replaced))
            _notify(room, row, path, "written", row.version, written_by)
    except BaseException:
        if not committed:
            delete_blob(blob_name)
        raise
    return row


def _tombstone(row: StoredFile) -> str:
    blob = row.blob_name
    row.blob_name, row.size, row.sha256, row.deleted_at = "", 0, "", timezone.now()
    row.version += 1
    row.save()
    return blob


@transaction.atomic
def do_delete_file(*, room: Room, path: str, deleted_by: str) -> None:
    """Deletes the file (its blob after commit); not found if there is none."""
    path = normalize_path(path)
    row = StoredFile.objects.select_for_update().live().filter(room=room, path=path).first()
    if row is None:
        raise not_found(f"no file {path!r} in this room", path=path)
    blob = _tombstone(row)
    transaction.on_commit(lambda: delete_blob(blob))
    _notify(room, None, path, "deleted", row.version, deleted_by)


@transaction.atomic
def do_move_file(*, room: Room, source: str, destination: str, moved_by: str) -> StoredFile:
    """Moves (renames) a file, replacing whatever is at `destination`. The blob is not copied."""
    source = normalize_path(source, field="source")
    destination = normalize_path(destination, field="destination")
    if source == destination:
        raise invalid_params("source and destination are the same path")
    # Lock both rows in path order, so two opposite moves cannot deadlock.
    first, second = sorted([source, destination])
    rows = {first: _locked_row(room, first), second: _locked_row(room, second)}
    moving, target = rows[source], rows[destination]
    if moving.deleted_at is not None:
        raise not_found(f"no file {source!r} in this room", path=source)
    replaced = target.blob_name
    target.size, target.content_type, target.sha256 = moving.size, moving.content_type, moving.sha256
    target.blob_name, target.written_by, target.deleted_at = moving.blob_name, moved_by, None
    target.version += 1
    target.save()
    moving.blob_name = ""  # handed over, not deleted
    _tombstone(moving)
    transaction.on_commit(lambda: delete_blob(replaced))
    _notify(
        room,
        target,
        destination,
        "moved",
        target.version,
        moved_by,
        previous_path=source,
        previous_version=moving.version,
    )
    return target
