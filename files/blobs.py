"""File contents in the Django storage backend under the `files` STORAGES alias.

Blob names are `rooms/<room id>/<uuid hex>`: nothing from the user's path reaches the backend, so
no path can escape the storage root or collide with another file's blob. Writes stream from a file
object in chunks, hashing and counting as they go, and stop as soon as the size limit is passed.
"""

import hashlib
import logging
import uuid
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from meshsite.errors import ErrorCode, MeshError

logger = logging.getLogger(__name__)
CHUNK_BYTES = 256 * 1024
STORAGE_ALIAS = "files"


def blob_storage() -> Storage:
    return storages[STORAGE_ALIAS]


def new_blob_name(room_id: int) -> str:
    return f"rooms/{room_id}/{uuid.uuid4().hex}"


def too_large(limit: int) -> MeshError:
    return MeshError(ErrorCode.PAYLOAD_TOO_LARGE, f"the file is larger than the limit of {limit} bytes", limit=limit)


class MeteredReader:
    """Reads a source in chunks, hashing and counting, and raising past `limit` bytes."""

    def __init__(self, source: IO[bytes], limit: int) -> None:
        self.source = source
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.source.read(CHUNK_BYTES if size is None or size < 0 else size)
        self.size += len(chunk)
        if self.size > self.limit:
            raise too_large(self.limit)
        self.digest.update(chunk)
        return chunk


if TYPE_CHECKING:
    BytesFile = File[bytes]
else:
    BytesFile = File  # generic only in the stubs


class MeteredFile(BytesFile):
    """What the storage backend saves: chunks of the metered reader, never the whole source."""

    def __init__(self, reader: MeteredReader, name: str) -> None:
        super().__init__(None, name)
        self.reader = reader

    def chunks(self, chunk_size: int | None = None):  # type: ignore[no-untyped-def]
        while chunk := self.reader.read(chunk_size or CHUNK_BYTES):
            yield chunk

    def read(self, size: int = -1) -> bytes:
        return self.reader.read(size)

    def __bool__(self) -> bool:
        return True


def save_blob(room_id: int, source: IO[bytes], limit: int | None = None) -> tuple[str, int, str]:
    """Streams `source` into a new blob; returns (blob name, size, sha256 hex). On any failure
    (the limit, a reader that raises) the partial blob is removed and the error re-raised."""
    limit = settings.MESHSITE_STORAGE_MAX_BYTES if limit is None else limit
    reader = MeteredReader(source, limit)
    name = new_blob_name(room_id)
    storage = blob_storage()
    try:
        saved = storage.save(name, MeteredFile(reader, name))
    except BaseException:
        delete_blob(name)
        raise
    return saved, reader.size, reader.digest.hexdigest()


def delete_blob(name: str) -> None:
    """Best effort: a blob left behind is garbage, never a visible file (no row points at it)."""
    if not name:
        return
    try:
        blob_storage().delete(name)
    except Exception:
        logger.exception("could not delete blob %s", name)


def open_blob(name: str) -> IO[bytes]:
    return blob_storage().open(name, "rb")
