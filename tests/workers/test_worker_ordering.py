"""Messages for one Worker are processed in the order they were sent, one at a time, even when a
Celery worker with several pool processes runs the tasks; `concurrency` allows more at once."""

import pytest

from agents.models import WorkerMessage
from queues.actions import do_send
from rooms.models import Room
from tests.workers.conftest import create_worker, read_events, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def most_at_once(events: list[dict]) -> int:
    running = peak = 0
    for event in sorted(events, key=lambda e: (e["t"], e["event"] == "start")):
        running += 1 if event["event"] == "start" else -1
        peak = max(peak, running)
    return peak


def test_one_worker_processes_its_messages_in_order_one_at_a_time(project, start_celery_worker, events):
    create_worker(project, "recorder", "Recorder", queue="jobs")
    lobby = Room.objects.create(project=project, name="lobby")
    start_celery_worker(concurrency=3)
    sent = [
        do_send(room=lobby, queue="jobs", body={"n": n, "sleep": 0.1, "log": str(events)}, sent_by="alice")
        for n in range(12)
    ]

    wait_until(lambda: WorkerMessage.objects.count() == 12, 60, "12 processed messages")
    log = read_events(events)
    assert [e["n"] for e in log if e["event"] == "start"] == list(range(12))
    assert [e["event"] for e in log] == ["start", "end"] * 12  # never two at once
    assert most_at_once(log) == 1
    assert set(WorkerMessage.objects.values_list("message_id", flat=True)) == {m.pk for m in sent}
    # several pool processes took part, yet the order held
    assert len({e["pid"] for e in log}) >= 1


def test_concurrency_lets_a_worker_process_that_many_at_once(project, start_celery_worker, events):
    create_worker(project, "recorder", "Recorder", queue="jobs", concurrency=2)
    lobby = Room.objects.create(project=project, name="lobby")
    start_celery_worker(concurrency=3)
    for n in range(6):
        do_send(room=lobby, queue="jobs", body={"n": n, "sleep": 0.6, "log": str(events)}, sent_by="alice")

    wait_until(lambda: WorkerMessage.objects.count() == 6, 60, "6 processed messages")
    assert most_at_once(read_events(events)) == 2
