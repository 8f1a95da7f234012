"""Reads of room storage. Authorisation is the caller's (files.access); listings are filtered by
a predicate the caller passes, so a page holds only what the caller may read."""

from collections.abc import Callable
from typing import IO, Any

from meshsite.errors import invalid_params, not_found
from rooms.models import Room

from .blobs import open_blob
from .models import StoredFile
from .paths import normalize_path, normalize_prefix

# How many rows one page may look at while skipping unreadable ones, per row it returns: a page
# with a cursor and fewer entries (even none) is the answer when the room is mostly unreadable.
SCAN_FACTOR = 20


def get_file(room: Room, path: str) -> StoredFile:
    """The live file at `path`, or MeshError not found."""
    path = normalize_path(path)
    stored = StoredFile.objects.live().in_room(room).filter(path=path).first()
    if stored is None:
        raise not_found(f"no file {path!r} in this room", path=path)
    return stored


def list_files(
    room: Room,
    prefix: str = "",
    *,
    limit: int = 100,
    cursor: str | None = None,
    readable: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Live files whose path starts with `prefix`, in path order, after `cursor` (the last path of
    the previous page). Returns {"files": [records], "next_cursor": path or None}."""
    prefix = normalize_prefix(prefix)
    if cursor is not None:
        cursor = normalize_path(cursor, field="cursor")
        if not cursor.startswith(prefix):
            raise invalid_params("cursor is not one this listing returned")
    query = StoredFile.objects.live().in_room(room).filter(path__startswith=prefix)
    if cursor is not None:
        query = query.filter(path__gt=cursor)
    scanned: list[StoredFile] = list(query.order_by("path")[: limit * SCAN_FACTOR + 1])
    files: list[StoredFile] = []
    last_seen: str | None = None
    for stored in scanned[: limit * SCAN_FACTOR]:
        last_seen = stored.path
        if readable is None or readable(stored.path):
            files.append(stored)
            if len(files) == limit:
                break
    exhausted = len(scanned) <= limit * SCAN_FACTOR and (last_seen is None or last_seen == scanned[-1].path)
    return {"files": [f.to_record() for f in files], "next_cursor": None if exhausted else last_seen}


def open_file(stored: StoredFile) -> IO[bytes]:
    """The file's contents as a binary file object (the caller closes it)."""
    return open_blob(stored.blob_name)
