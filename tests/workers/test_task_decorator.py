"""The project's one task decorator: stable names, the delivery and retry policy on the task, runs
recorded in TaskStat; and enqueue_on_commit: after commit only, eagerly on a background thread."""

import threading

import pytest
from django.db import transaction

from agents.models import TaskStat
from agents.tasks import worker_drain
from meshsite.celery import app
from observability.tasks import background_task, enqueue_on_commit, wait_for_background_tasks

pytestmark = pytest.mark.django_db(transaction=True)

ran: list[tuple[int, str]] = []


class Flaky(Exception):
    pass


@background_task("tests.record_thread")
def record_thread(value: int) -> None:
    ran.append((value, threading.current_thread().name))


@background_task("tests.always_fails", autoretry_for=(Flaky,), max_retries=2, retry_backoff=0)
def always_fails() -> None:
    raise ValueError("broken on purpose")


def test_the_worker_task_carries_the_delivery_and_retry_policy():
    assert worker_drain.name == "agents.worker_drain"
    assert app.tasks["agents.worker_drain"].acks_late
    assert (worker_drain.acks_late, worker_drain.reject_on_worker_lost) == (True, True)
    assert worker_drain.max_retries == 20
    assert app.conf.worker_prefetch_multiplier == 1


def test_it_refuses_a_second_task_of_one_name_and_catch_all_retries():
    with pytest.raises(ValueError, match="two tasks are named"):
        background_task("tests.record_thread")(lambda: None)
    with pytest.raises(ValueError, match="not Exception"):
        background_task("tests.catch_all", autoretry_for=(Exception,))
    with pytest.raises(ValueError, match=r"<app>\.<what>"):
        background_task("nodot")


@pytest.fixture
def eager():
    """The embedded default's mode, whatever this run's REDIS_URL."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_enqueue_on_commit_runs_after_commit_on_a_background_thread(eager):
    ran.clear()
    with transaction.atomic():
        enqueue_on_commit(record_thread, 1)
        assert ran == []  # not before the commit
    assert wait_for_background_tasks(10)
    [(value, thread)] = ran
    assert value == 1 and thread.startswith("background-task") and thread != threading.current_thread().name
    with transaction.atomic():
        enqueue_on_commit(record_thread, 2)
        transaction.set_rollback(True)
    assert wait_for_background_tasks(10) and len(ran) == 1  # rolled back: never sent


def test_each_run_and_failure_is_recorded():
    record_thread.apply((3,))
    with pytest.raises(ValueError):
        always_fails.apply(throw=True)
    ok = TaskStat.objects.get(name="tests.record_thread")
    assert (ok.runs, ok.failures) == (1, 0) and ok.max_seconds >= 0
    failed = TaskStat.objects.get(name="tests.always_fails")
    assert (failed.runs, failed.failures) == (1, 1)
    assert failed.last_error == "ValueError: broken on purpose"
