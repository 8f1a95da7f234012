"""A real `celery -A meshsite worker` process for tests, on the test database and real Redis.

```python
def test_it_works(celery_worker: CeleryWorkerProcess) -> None:
    ...                      # enqueue work; the worker process runs it
    celery_worker.kill()     # SIGKILL the whole worker (main process and its pool children)
    celery_worker.start()    # and start it again
```

The worker consumes this run's task queue, `<MESHSITE_REDIS_PREFIX>.tasks` with Redis keys under
`<MESHSITE_REDIS_PREFIX>.celery.` (settings: CELERY_TASK_DEFAULT_QUEUE and the broker's
`global_keyprefix`), so runs with different prefixes never share tasks; the queue is purged when a
fixture starts. Worker agents connect to the session's web node (`MESHSITE_WORKER_URL`).
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import pytest
from django.conf import settings

from .servers import ROOT, ManagedProcess, ServerProcess, test_database_env
from .services import require


class CeleryWorkerProcess(ManagedProcess):
    """`celery -A meshsite worker` in its own process group (so a kill takes its pool children too)."""

    def __init__(
        self,
        *,
        web: ServerProcess | None = None,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.nodename = f"tests-{os.getpid()}-{time.monotonic_ns()}@%h"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.test",
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": settings.REDIS_URL,
            "MESHSITE_REDIS_PREFIX": settings.MESHSITE_REDIS_PREFIX,
            "MESHSITE_CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            # Workers leave their room soon after their last message, before the test ends
            "MESHSITE_WORKER_IDLE_SECONDS": "1",
            **test_database_env(),
            **({"MESHSITE_WORKER_URL": web.http_url} if web is not None else {}),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / "var" / f"test-celery-{os.getpid()}-{time.monotonic_ns()}.log"
        self.starts = 0

    def start(self, timeout: float = 60) -> Self:
        """Starts the worker and waits until it consumes (its log says `ready.`)."""
        self.log_path.parent.mkdir(exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "meshsite",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--pool=prefork",
                f"--hostname={self.nodename}",
                "--without-gossip",
                "--without-mingle",
                f"--queues={self.env['MESHSITE_CELERY_QUEUE']}",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.process.returncode}:\n{self.log()}")
            if b" ready." in self.log_path.read_bytes()[offset:]:
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"celery worker not ready in {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crashed machine would."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """A warm shutdown (SIGTERM): running tasks finish first. Killed when it takes too long."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode


def purge_task_queue() -> None:
    """Drops tasks a previous run left in this run's queue."""
    from meshsite.celery import app

    app.control.purge()


StartCeleryWorker = Callable[..., CeleryWorkerProcess]


@pytest.fixture
def start_celery_worker(server: ServerProcess, django_db_blocker: Any) -> Iterator[StartCeleryWorker]:
    """Starts Celery worker processes against the session's web node; stops them afterwards."""
    require("redis")
    started: list[CeleryWorkerProcess] = []
    with django_db_blocker.unblock():
        purge_task_queue()

    def start(**kwargs: Any) -> CeleryWorkerProcess:
        kwargs.setdefault("web", server)
        with django_db_blocker.unblock():
            worker = CeleryWorkerProcess(**kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def celery_worker(start_celery_worker: StartCeleryWorker) -> CeleryWorkerProcess:
    """One Celery worker process (prefork, two children) for the test."""
    return start_celery_worker()
