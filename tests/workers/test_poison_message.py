"""A message the Worker keeps failing on is retried with backoff, then moves to `<queue>.dlq` with
its error; the messages behind it are processed meanwhile."""

import pytest

from agents.models import WorkerMessage
from queues.actions import do_configure_queue, do_send
from queues.models import QueueMessage
from rooms.models import Room
from tests.workers.conftest import create_worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_a_poison_message_goes_to_the_dead_letter_queue_with_its_error(project, celery_worker):
    create_worker(project, "poison", "Poison", queue="risky")
    lobby = Room.objects.create(project=project, name="lobby")
    do_configure_queue(lobby, "risky", max_deliveries=3, backoff_base=0.2)
    poison = do_send(room=lobby, queue="risky", body={"n": 1, "poison": True}, sent_by="alice")
    good = do_send(room=lobby, queue="risky", body={"n": 2}, sent_by="alice")

    dead = wait_until(lambda: QueueMessage.objects.filter(queue="risky.dlq").first(), 40, "the dead letter")
    assert dead.pk == poison.pk
    assert dead.last_error == "TimeoutError: cannot digest message 1"
    assert dead.dead_attempts == 3
    assert WorkerMessage.objects.get(message_id=good.pk).result == {"ok": True}
    assert not WorkerMessage.objects.filter(message_id=poison.pk).exists()
    assert not QueueMessage.objects.filter(queue="risky").exists()
