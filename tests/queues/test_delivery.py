"""Send, receive with a lease, ack: a message is redelivered after its visibility timeout, not
before, and a consumer that lost its lease cannot acknowledge."""

import time

import pytest

from queues.actions import Delivery, do_ack, do_extend, do_receive, do_send
from queues.errors import MessageGone, StaleReceipt
from queues.selectors import queue_stats

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_message_is_received_once_and_gone_when_acked(room):
    sent = do_send(room=room, queue="orders", body={"order": 1}, sent_by="alice")
    [delivery] = do_receive(room=room, queue="orders", consumer="robot")
    assert isinstance(delivery, Delivery)
    assert (delivery.message_id, delivery.body, delivery.attempt) == (sent.pk, {"order": 1}, 1)
    assert (delivery.sent_by, delivery.queue, delivery.sent_at) == ("alice", "orders", sent.sent_at)
    assert do_receive(room=room, queue="orders", consumer="other") == []
    assert queue_stats(room, "orders") == {"visible": 0, "in_flight": 1, "delayed": 0, "dead": 0}
    do_ack(room=room, queue="orders", message_id=delivery.message_id, receipt=delivery.receipt)
    assert queue_stats(room, "orders") == {"visible": 0, "in_flight": 0, "delayed": 0, "dead": 0}
    with pytest.raises(MessageGone):
        do_ack(room=room, queue="orders", message_id=delivery.message_id, receipt=delivery.receipt)


def test_messages_come_oldest_first_and_in_batches(room):
    ids = [do_send(room=room.pk, queue="jobs", body=n, sent_by="alice").pk for n in range(5)]
    first = do_receive(room=room, queue="jobs", consumer="robot", max_messages=3)
    rest = do_receive(room=room, queue="jobs", consumer="robot", max_messages=3)
    assert [d.message_id for d in first + rest] == ids
    assert [d.body for d in first] == [0, 1, 2]


def test_it_redelivers_after_the_visibility_timeout_and_not_before(room):
    do_send(room=room, queue="orders", body="x", sent_by="alice")
    [first] = do_receive(room=room, queue="orders", consumer="dies", visibility_timeout=0.6)
    leased_at = time.monotonic()
    while time.monotonic() - leased_at < 0.5:
        assert do_receive(room=room, queue="orders", consumer="waits") == []
        time.sleep(0.05)
    time.sleep(max(0.0, 0.65 - (time.monotonic() - leased_at)))
    [second] = do_receive(room=room, queue="orders", consumer="waits", visibility_timeout=5)
    assert (second.message_id, second.attempt) == (first.message_id, 2)
    assert second.receipt != first.receipt
    # the first consumer's lease is lost: its ack, nack or heartbeat is refused
    with pytest.raises(StaleReceipt) as refused:
        do_ack(room=room, queue="orders", message_id=first.message_id, receipt=first.receipt)
    assert "delivered again" in refused.value.message
    with pytest.raises(StaleReceipt):
        do_extend(room=room, queue="orders", message_id=first.message_id, receipt=first.receipt, visibility_timeout=9)
    do_ack(room=room, queue="orders", message_id=second.message_id, receipt=second.receipt)


def test_an_ack_after_the_lease_ran_out_counts_if_nobody_received_it_since(room):
    do_send(room=room, queue="orders", body="x", sent_by="alice")
    [late] = do_receive(room=room, queue="orders", consumer="slow", visibility_timeout=0.1)
    time.sleep(0.2)
    do_ack(room=room, queue="orders", message_id=late.message_id, receipt=late.receipt)
    assert do_receive(room=room, queue="orders", consumer="other") == []


def test_extend_keeps_a_long_job_invisible(room):
    do_send(room=room, queue="orders", body="x", sent_by="alice")
    [delivery] = do_receive(room=room, queue="orders", consumer="long", visibility_timeout=0.3)
    for _beat in range(3):
        time.sleep(0.2)
        do_extend(
            room=room, queue="orders", message_id=delivery.message_id, receipt=delivery.receipt, visibility_timeout=0.3
        )
        assert do_receive(room=room, queue="orders", consumer="other") == []
    do_ack(room=room, queue="orders", message_id=delivery.message_id, receipt=delivery.receipt)


def test_a_delayed_message_waits_its_delay(room):
    do_send(room=room, queue="later", body="x", sent_by="alice", delay=0.4)
    assert queue_stats(room, "later")["delayed"] == 1
    assert do_receive(room=room, queue="later", consumer="robot") == []
    time.sleep(0.45)
    assert [d.body for d in do_receive(room=room, queue="later", consumer="robot")] == ["x"]


def test_queues_are_per_room_and_per_name(room, other_room):
    message = do_send(room=room, queue="orders", body="x", sent_by="alice")
    assert do_receive(room=other_room, queue="orders", consumer="robot") == []
    assert do_receive(room=room, queue="orders-2", consumer="robot") == []
    [delivery] = do_receive(room=room, queue="orders", consumer="robot")
    with pytest.raises(MessageGone):
        do_ack(room=other_room, queue="orders", message_id=message.pk, receipt=delivery.receipt)
