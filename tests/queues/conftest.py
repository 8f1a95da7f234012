import time
from collections.abc import Callable

import pytest

from rooms.actions.rooms import do_create_room
from rooms.models import Project, Room


@pytest.fixture
def room(project: Project) -> Room:
    return do_create_room(project, "lobby")


@pytest.fixture
def other_room(project: Project) -> Room:
    return do_create_room(project, "elsewhere")


def wait_for(predicate: Callable[[], object], timeout: float = 10, interval: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {predicate}")
