"""The one Celery task decorator of the project, and the one way to enqueue a task.

```python
from observability.tasks import background_task, enqueue_on_commit

@background_task("mail.deliver_inbound", autoretry_for=(SMTPServerDisconnected,), max_retries=5)
def deliver_inbound(inbound_id: int) -> None:
    inbound = Inbound.objects.filter(pk=inbound_id).first()
    if inbound is None:
        return  # gone meanwhile: nothing to do
    do_deliver_inbound(inbound)

# in an action, inside its transaction:
enqueue_on_commit(deliver_inbound, inbound.pk)
```

What the decorator gives every task (STYLE.md #7, #8):
- a **stable name** (the first argument, `<app>.<verb_noun>`): renaming the function never orphans
  queued messages; two tasks with one name are refused at import time;
- the **delivery policy**: `acks_late=True` and `reject_on_worker_lost=True` (a task whose worker
  dies is delivered again, so tasks must be idempotent; they take ids and reload), prefetch one
  (`CELERY_WORKER_PREFETCH_MULTIPLIER`);
- the **retry policy** on the decorator: `autoretry_for` lists the specific, transient errors worth
  retrying (never `Exception`), with exponential backoff and jitter, up to `max_retries`;
- **records** each run: its duration and outcome in the log and in `agents.TaskStat` (runs,
  failures, mean/max seconds, last error; the admin's "Task stats"). A failed statistics write is
  logged and never fails the task.

`enqueue_on_commit(task, *ids)` sends the task once the surrounding transaction commits (at once
outside one). Without a broker (the embedded default, `CELERY_TASK_ALWAYS_EAGER`) the same task
body runs in-process on a small pool of background threads, never on the caller's thread: the
caller may be the web server's single database thread, and a task that talks to the server over a
WebSocket would otherwise wait for itself.
"""

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, ParamSpec, TypeVar

from celery.exceptions import Ignore, Reject, Retry
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from meshsite.celery import app

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Control flow, not failures: a retry scheduled, a task told to stop or to reject its message.
CONTROL_FLOW = (Retry, Ignore, Reject)
EAGER_THREADS = 4

_names: set[str] = set()


def background_task(
    name: str,
    *,
    autoretry_for: tuple[type[BaseException], ...] = (),
    max_retries: int = 5,
    retry_backoff: int = 1,
    retry_backoff_max: int = 60,
    **options: Any,
) -> Callable[[Callable[P, R]], Any]:
    """Declares a Celery task named `name`; see the module docstring. `options` go to Celery
    (`time_limit`, `soft_time_limit`, `rate_limit`, ...); the delivery policy is not negotiable."""
    if "." not in name:
        raise ValueError(f"task names are '<app>.<what>': {name!r}")
    if name in _names:
        raise ValueError(f"two tasks are named {name!r}")
    if Exception in autoretry_for or BaseException in autoretry_for:
        raise ValueError("autoretry_for lists specific, transient errors, not Exception")
    _names.add(name)

    def decorate(fn: Callable[P, R]) -> Any:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.monotonic()
            try:
                result = fn(*args, **kwargs)
            except CONTROL_FLOW:
                _record(name, time.monotonic() - started, error=None)
                raise
            except Exception as exc:
                elapsed = time.monotonic() - started
                logger.warning("task %s%s failed after %.3fs", name, _show(args), elapsed, exc_info=True)
                _record(name, elapsed, error=f"{type(exc).__name__}: {exc}")
                raise
            elapsed = time.monotonic() - started
            logger.info("task %s%s done in %.3fs", name, _show(args), elapsed)
            _record(name, elapsed, error=None)
            return result

        return app.task(
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=autoretry_for,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            retry_jitter=True,
            **options,
        )(run)

    return decorate


def _show(args: tuple[Any, ...]) -> str:
    return "(" + ", ".join(repr(a) for a in args)[:200] + ")"


def _record(name: str, seconds: float, *, error: str | None) -> None:
    from agents.models import TaskStat

    now = timezone.now()
    changes: dict[str, Any] = {
        "runs": F("runs") + 1,
        "total_seconds": F("total_seconds") + seconds,
        "max_seconds": Greatest(F("max_seconds"), Value(seconds)),
        "last_run_at": now,
    }
    if error is not None:
        changes.update(failures=F("failures") + 1, last_error=error[:2000], last_failed_at=now)
    try:
        if not TaskStat.objects.filter(name=name).update(**changes):
            TaskStat.objects.get_or_create(name=name)
            TaskStat.objects.filter(name=name).update(**changes)
    except DatabaseError:
        logger.exception("could not record a run of task %s", name)


# -- enqueueing -------------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending: set["Future[Any]"] = set()


def enqueue_on_commit(task: Any, *args: Any, countdown: float | None = None, using: str | None = None) -> None:
    """Sends `task(*args)` when the current transaction commits (at once outside one). Pass ids."""
    transaction.on_commit(lambda: enqueue(task, *args, countdown=countdown), using=using)


def enqueue(task: Any, *args: Any, countdown: float | None = None) -> None:
    """Sends `task(*args)` now: to the broker, or, eager, to the in-process background threads."""
    if not task.app.conf.task_always_eager:
        task.apply_async(args, countdown=countdown)
        return
    if countdown:
        timer = threading.Timer(countdown, _submit, (task, args))
        timer.daemon = True
        timer.start()
    else:
        _submit(task, args)


def _submit(task: Any, args: tuple[Any, ...]) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=EAGER_THREADS, thread_name_prefix="background-task")
        future = _pool.submit(_run_eagerly, task, args)
        _pending.add(future)
    future.add_done_callback(_pending.discard)


def _run_eagerly(task: Any, args: tuple[Any, ...]) -> None:
    try:
        task.apply(args, throw=True)
    except Exception:
        logger.exception("background task %s%s failed", task.name, _show(args))
    finally:
        close_old_connections()


def wait_for_background_tasks(timeout: float = 30.0) -> bool:
    """Eager mode: waits until the in-process background tasks submitted so far are done (tests,
    graceful shutdown). True when none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _pool_lock:
            pending = [f for f in _pending if not f.done()]
        if not pending:
            return True
        wait(pending, timeout=max(0.0, deadline - time.monotonic()))
    return False
