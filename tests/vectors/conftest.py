"""Fixtures of the vector store tests: a room, and a tool context for calling the built-in
toolkits in-process with a participant's grants (end-to-end tests use real sockets instead)."""

import importlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings

from rooms.actions.rooms import do_create_room
from rooms.grants import Grants, default_grants, merge_grants
from rooms.models import Project, Room
from tests.support.servers import ServerProcess
from tests.support.services import unavailable
from vectors.embeddings import local_model_installed
from vectors.models import IndexJob


@pytest.fixture(autouse=True)
def indexer_on(settings: Any) -> None:
    """The test settings turn the Indexer off for everyone else's tests; these are about it."""
    settings.MESHSITE_INDEXER = True


@pytest.fixture(scope="module")
def indexing_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[ServerProcess]:
    """A web node whose Indexer watches (what participants post through it gets indexed)."""
    with django_db_blocker.unblock():
        process = ServerProcess(redis_url=django_settings.REDIS_URL or None, env={"MESHSITE_INDEXER": "1"}).start()
    yield process
    process.stop()


def require_local_model() -> None:
    """The store's tests embed with the local model: without it they fail under
    MESHSITE_REQUIRE_SERVICES=1 (CI installs it) and are skipped otherwise, saying what to run."""
    if local_model_installed():
        return
    unavailable("needs the local embedding model: run `make install-embeddings`")


@pytest.fixture
def room(project: Project, local_model_price: None) -> Room:
    require_local_model()
    return do_create_room(project, "lobby")


@pytest.fixture
def local_model_price(transactional_db: None) -> None:
    """The embedding prices the migrations seed (observability 0005: OpenAI's; vectors 0002: the
    local model's), which a flush between transactional tests drops, put back by their own code."""
    for migration in ("observability.migrations.0005_seed_prices", "vectors.migrations.0002_local_embedding_price"):
        importlib.import_module(migration).seed(django_apps, None)


def grants_for(role: str = "user", identity: str = "alice", **requested: Any) -> Grants:
    return Grants(merge_grants(default_grants(role, identity), requested or None))


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def finished_job(room: Room, ref: str, version: int | str, action: str = "index", timeout: float = 90) -> IndexJob:
    """The Indexer's job for (source, version), once it has run."""

    def done() -> IndexJob | None:
        return (
            IndexJob.objects.filter(room=room, source_ref=ref, version=str(version), action=action)
            .exclude(status__in=["queued", "running"])
            .first()
        )

    return wait_for(done, timeout, f"the {action} job of {ref}@{version}")
