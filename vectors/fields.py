"""`EmbeddingField`: one column type for embeddings on both databases.

On Postgres it is pgvector's `vector` without a fixed dimension, so one table holds the vectors of
any embedding model; the HNSW indexes are partial expression indexes per dimension
(`(embedding::vector(384)) … WHERE dims = 384`, see migrations/0001_initial.py). On SQLite it is a
BLOB of little-endian float32 values, searched exactly in Python. The Python value is a list of
floats either way, so nothing above the field branches on the database.
"""

from array import array
from typing import Any

from django.db import models
from pgvector import Vector


def to_float32_bytes(values: Any) -> bytes:
    packed = array("f", (float(v) for v in values))
    if packed.itemsize != 4:  # pragma: no cover - every platform CPython supports has 4-byte floats
        raise RuntimeError("float32 array items are not 4 bytes on this platform")
    return packed.tobytes()


def from_float32_bytes(data: bytes | memoryview) -> list[float]:
    packed = array("f")
    packed.frombytes(bytes(data))
    return packed.tolist()


class EmbeddingField(models.Field):
    description = "An embedding: pgvector `vector` on Postgres, float32 bytes elsewhere"
    empty_strings_allowed = False

    def db_type(self, connection: Any) -> str:
        return "vector" if connection.vendor == "postgresql" else "blob"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[float] | None:
        if value is None:
            return None
        if isinstance(value, bytes | memoryview):
            return from_float32_bytes(value)
        parsed = Vector._from_db(value)
        return None if parsed is None else [float(v) for v in parsed]

    def to_python(self, value: Any) -> list[float] | None:
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, bytes | memoryview):
            return from_float32_bytes(value)
        return [float(v) for v in value]

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if connection.vendor == "postgresql":
            return Vector._to_db(list(value))
        return to_float32_bytes(value)
