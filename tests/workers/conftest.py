"""Helpers of the Worker tests: Worker services, the event log the sample Workers write, waiting."""

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from agents.models import Service
from agents.workers import do_create_worker_service
from rooms.models import Project
from tests.support.fake_openai import fake_openai

__all__ = ["fake_openai"]


def create_worker(project: Project, name: str, class_path: str, **config: Any) -> Service:
    return do_create_worker_service(project, name, f"tests.workers.sample_workers.{class_path}", config=config)


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` on a worker thread that closes its database connection afterwards (a leftover
    connection would keep the test database from being dropped)."""

    def run() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


async def next_event(stream: Any, predicate: Callable[[Any], bool], timeout: float = 30) -> Any:
    """The next event of a client's `events(...)` stream that matches `predicate`."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching event in {timeout}s")
        event = await asyncio.wait_for(stream.__anext__(), remaining)
        if predicate(event):
            return event


def worker_state(event: Any, identity: str) -> str | None:
    """The `worker.state` attribute of `identity` in a participant.joined/updated event."""
    participant = event.params.get("participant") or {}
    if event.method not in ("participant.joined", "participant.updated") or participant.get("identity") != identity:
        return None
    return (participant.get("attributes", {}).get("worker") or {}).get("state")


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return tmp_path / "events.log"
