"""A Celery worker SIGKILLed while a Worker processes a message: once its lease runs out the
message is processed again, and its result is recorded exactly once (with the ack, one transaction)."""

import pytest

from agents.models import WorkerMessage, WorkerSlot
from queues.actions import do_send
from queues.models import QueueMessage
from rooms.models import Room
from tests.workers.conftest import create_worker, read_events, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

FAST_SWEEP = {"MESHSITE_WORKER_SWEEP_SECONDS": "0.5"}


def test_a_killed_worker_s_message_is_processed_again_and_recorded_once(project, start_celery_worker, events):
    create_worker(project, "recorder", "Recorder", queue="jobs", visibility_timeout=3)
    lobby = Room.objects.create(project=project, name="lobby")
    celery = start_celery_worker(env=FAST_SWEEP)
    message = do_send(room=lobby, queue="jobs", body={"n": 1, "sleep": 4, "log": str(events)}, sent_by="alice")

    wait_until(lambda: [e for e in read_events(events) if e["event"] == "start"], 30, "the first start")
    celery.kill()  # mid-task: the Worker is sleeping inside process_message
    assert not WorkerMessage.objects.exists()
    assert QueueMessage.objects.get(pk=message.pk).attempt == 1  # leased, unacknowledged
    celery.start()

    record = wait_until(lambda: WorkerMessage.objects.filter(message_id=message.pk).first(), 40, "the result row")
    assert record.attempt == 2
    assert record.result == {"n": 1, "attempt": 2}
    seen = [(e["event"], e["attempt"]) for e in read_events(events)]
    assert seen == [("start", 1), ("start", 2), ("end", 2)]  # processed twice, completed once
    assert WorkerMessage.objects.filter(message_id=message.pk).count() == 1
    assert not QueueMessage.objects.filter(pk=message.pk).exists()  # acked, not dead-lettered
    assert not QueueMessage.objects.filter(queue="jobs.dlq").exists()
    # and the killed task's slot was released by the one that finished the work
    wait_until(lambda: not WorkerSlot.objects.exclude(holder="").exists(), 10, "the slot to be free")
