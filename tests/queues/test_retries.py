"""Nack retries with backoff; after `max_deliveries` failed deliveries (nacks or lease timeouts)
a message moves to `<queue>.dlq` with its last error and the deliveries it had."""

import time
from datetime import timedelta

import pytest

from queues.actions import do_ack, do_configure_queue, do_nack, do_receive, do_send
from queues.errors import MessageGone, StaleReceipt
from queues.models import QueueMessage
from queues.selectors import queue_stats

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_nacked_message_comes_back_after_the_queue_backoff(room):
    do_configure_queue(room, "jobs", backoff_base=0.2, backoff_cap=0.3)
    message = do_send(room=room, queue="jobs", body="x", sent_by="alice")
    backoffs = []
    for attempt in (1, 2, 3):
        [delivery] = do_receive(room=room, queue="jobs", consumer="robot")
        assert delivery.attempt == attempt
        before = time.time()
        do_nack(
            room=room, queue="jobs", message_id=delivery.message_id, receipt=delivery.receipt, error=f"fail {attempt}"
        )
        row = QueueMessage.objects.get(pk=message.pk)
        backoffs.append(round(row.visible_at.timestamp() - before, 1))
        assert queue_stats(room, "jobs")["delayed"] == 1
        assert do_receive(room=room, queue="jobs", consumer="robot") == []
        time.sleep(0.35)
    # 0.2 s, then doubled (0.4) but capped at 0.3
    assert backoffs == [0.2, 0.3, 0.3]
    [delivery] = do_receive(room=room, queue="jobs", consumer="robot")
    assert (delivery.attempt, delivery.last_error) == (4, "fail 3")


def test_nack_takes_an_explicit_retry_delay_and_needs_the_current_receipt(room):
    do_send(room=room, queue="jobs", body="x", sent_by="alice")
    [delivery] = do_receive(room=room, queue="jobs", consumer="robot")
    with pytest.raises(StaleReceipt):
        do_nack(room=room, queue="jobs", message_id=delivery.message_id, receipt="not-the-receipt")
    do_nack(room=room, queue="jobs", message_id=delivery.message_id, receipt=delivery.receipt, retry_delay=0)
    [again] = do_receive(room=room, queue="jobs", consumer="robot")
    assert again.attempt == 2
    # the nack released the lease: the old receipt cannot ack any more
    with pytest.raises(StaleReceipt):
        do_nack(room=room, queue="jobs", message_id=delivery.message_id, receipt=delivery.receipt)


def test_it_dead_letters_after_max_deliveries_with_the_last_error(room):
    do_configure_queue(room, "jobs", max_deliveries=3)
    message = do_send(room=room, queue="jobs", body={"poison": True}, sent_by="alice")
    for attempt in (1, 2, 3):
        [delivery] = do_receive(room=room, queue="jobs", consumer="robot")
        assert delivery.attempt == attempt
        do_nack(
            room=room,
            queue="jobs",
            message_id=delivery.message_id,
            receipt=delivery.receipt,
            error=f"ValueError: bad input #{attempt}",
            retry_delay=0,
        )
    assert do_receive(room=room, queue="jobs", consumer="robot") == []
    assert queue_stats(room, "jobs") == {"visible": 0, "in_flight": 0, "delayed": 0, "dead": 1}
    [dead] = do_receive(room=room, queue="jobs.dlq", consumer="ops")
    assert (dead.message_id, dead.body, dead.queue) == (message.pk, {"poison": True}, "jobs.dlq")
    assert (dead.last_error, dead.dead_attempts, dead.attempt) == ("ValueError: bad input #3", 3, 1)
    with pytest.raises(MessageGone):
        do_ack(room=room, queue="jobs", message_id=dead.message_id, receipt=dead.receipt)
    do_ack(room=room, queue="jobs.dlq", message_id=dead.message_id, receipt=dead.receipt)


def test_lease_timeouts_count_as_failed_deliveries(room):
    do_configure_queue(room, "jobs", max_deliveries=2)
    message = do_send(room=room, queue="jobs", body="x", sent_by="alice")
    for attempt in (1, 2):
        [delivery] = do_receive(room=room, queue="jobs", consumer="dies", visibility_timeout=0.1)
        assert delivery.attempt == attempt
        time.sleep(0.15)
    assert do_receive(room=room, queue="jobs", consumer="robot") == []
    [dead] = do_receive(room=room, queue="jobs.dlq", consumer="ops")
    assert dead.message_id == message.pk
    assert dead.last_error == "visibility timeout expired on delivery 2"
    assert dead.dead_attempts == 2


def test_a_dead_message_does_not_block_the_live_ones_behind_it(room):
    do_configure_queue(room, "jobs", max_deliveries=1)
    do_send(room=room, queue="jobs", body="poison", sent_by="alice")
    [poison] = do_receive(room=room, queue="jobs", consumer="dies", visibility_timeout=0.1)
    healthy = do_send(room=room, queue="jobs", body="fine", sent_by="alice")
    # ordered behind the poison message, whose lease runs out first
    lease_end = QueueMessage.objects.get(pk=poison.message_id).visible_at
    QueueMessage.objects.filter(pk=healthy.pk).update(visible_at=lease_end + timedelta(seconds=0.01))
    time.sleep(0.2)
    # one receive dead-letters the spent message and still delivers the next one
    [delivery] = do_receive(room=room, queue="jobs", consumer="robot")
    assert delivery.body == "fine"
    assert queue_stats(room, "jobs")["dead"] == 1


def test_a_dead_letter_queue_never_dead_letters_further(room):
    do_configure_queue(room, "jobs.dlq", max_deliveries=1)
    do_send(room=room, queue="jobs.dlq", body="x", sent_by="ops")
    for attempt in (1, 2, 3):
        [delivery] = do_receive(room=room, queue="jobs.dlq", consumer="ops")
        assert delivery.attempt == attempt
        do_nack(room=room, queue="jobs.dlq", message_id=delivery.message_id, receipt=delivery.receipt, retry_delay=0)
    assert queue_stats(room, "jobs.dlq")["visible"] == 1
