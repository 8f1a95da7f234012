"""Which real services this run has, and what to do about a test that needs a missing one.

`make test` works on a machine without Postgres or Redis: tests that need them are skipped with the
reason. CI sets MESHSITE_REQUIRE_SERVICES=1, which turns such a skip into a failure.
"""

import os
from typing import NoReturn

import pytest
from django.conf import settings
from django.db import connection

REQUIRE_SERVICES = os.environ.get("MESHSITE_REQUIRE_SERVICES") == "1"


def missing_service(marker: str) -> str | None:
    if marker == "redis" and not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
    if marker == "postgres" and connection.vendor != "postgresql":
        return "needs PostgreSQL with pgvector: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/meshsite)"
    return None


def unavailable(reason: str) -> NoReturn:
    """Skips the running test for `reason` (what it needs and how to get it), or fails it under
    MESHSITE_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(f"MESHSITE_REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)


def require(marker: str) -> None:
    reason = missing_service(marker)
    if reason is not None:
        unavailable(reason)
