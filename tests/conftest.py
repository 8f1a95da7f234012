"""Shared fixtures: named personas, a project, token minting, and real server processes.

Personas: `alice` owns things (user), `bob` is another user, `charlie` gets a token without
grants, `robot` is an agent, `ops` is a service (may act on behalf of others).
"""

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from rooms.actions.projects import do_create_api_key, do_create_project
from rooms.models import Participant, Project
from rooms.tokens import mint_token
from tests.support.celery_worker import celery_worker, start_celery_worker  # noqa: F401 (fixtures)
from tests.support.servers import ServerProcess
from tests.support.services import require


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("postgres", "redis"):
        if item.get_closest_marker(marker):
            require(marker)


@pytest.fixture
def project(transactional_db: None) -> Project:
    return do_create_project("acme", "Acme")


@pytest.fixture
def api_key(project: Project) -> str:
    _key, raw = do_create_api_key(project, "tests")
    return raw


Mint = Callable[..., str]


@pytest.fixture
def mint(project: Project) -> Iterator[Mint]:
    def _mint(identity: str, role: str = "user", room: str = "lobby", **kwargs: Any) -> str:
        kwargs.setdefault("project", project.slug)
        token, _expires = mint_token(room=room, identity=identity, role=role, **kwargs)
        return token

    yield _mint
    wait_until_everyone_left()


def wait_until_everyone_left(timeout: float = 10) -> None:
    """Lets server processes finish handling disconnects before the test database is flushed:
    Postgres' TRUNCATE would deadlock with their last writes."""
    deadline = time.monotonic() + timeout
    while Participant.objects.present().exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="session")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[ServerProcess]:
    """One web node for the session, on the test database (and Redis when the run has it)."""
    with django_db_blocker.unblock():
        process = ServerProcess(redis_url=settings.REDIS_URL or None).start()
    yield process
    process.stop()


@pytest.fixture
def ws_url(server: ServerProcess) -> Callable[[str], str]:
    return server.ws_url


@pytest.fixture(scope="module")
def two_nodes(django_db_setup: None, django_db_blocker: Any) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two web nodes sharing Redis and the test database; a run without Redis skips (or, with
    MESHSITE_REQUIRE_SERVICES=1, fails) through `require`."""
    require("redis")
    with django_db_blocker.unblock():
        first = ServerProcess(redis_url=settings.REDIS_URL).start()
        second = ServerProcess(redis_url=settings.REDIS_URL).start()
    yield first, second
    first.stop()
    second.stop()
