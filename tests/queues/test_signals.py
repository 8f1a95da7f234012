"""`message_sent` fires after the sender's transaction commits, never for a rolled-back send."""

import pytest
from django.db import transaction

from queues.actions import do_configure_queue, do_nack, do_receive, do_send
from queues.signals import message_sent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent():
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        # the message is committed when the receiver runs: another connection would see it
        seen.append(
            {k: kwargs[k] for k in ("room", "queue", "message_id")} | {"autocommit": transaction.get_autocommit()}
        )

    message_sent.connect(receiver, dispatch_uid="tests.queues.sent")
    yield seen
    message_sent.disconnect(dispatch_uid="tests.queues.sent")


def test_it_signals_after_commit_with_room_queue_and_id(room, sent):
    with transaction.atomic():
        message = do_send(room=room, queue="orders", body=1, sent_by="alice")
        assert sent == []
    assert sent == [{"room": room.pk, "queue": "orders", "message_id": message.pk, "autocommit": True}]


def test_a_rolled_back_send_leaves_no_message_and_no_signal(room, sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        do_send(room=room, queue="orders", body=1, sent_by="alice")
        raise RuntimeError("the sender's own write failed")
    assert sent == []
    assert do_receive(room=room, queue="orders", consumer="robot") == []


def test_dead_lettering_signals_the_dead_letter_queue(room, sent):
    do_configure_queue(room, "orders", max_deliveries=1)
    message = do_send(room=room, queue="orders", body=1, sent_by="alice")
    [delivery] = do_receive(room=room, queue="orders", consumer="robot")
    do_nack(room=room, queue="orders", message_id=message.pk, receipt=delivery.receipt, error="boom")
    assert [s["queue"] for s in sent] == ["orders", "orders.dlq"]


def test_a_failing_receiver_does_not_fail_the_committed_send(room, sent, caplog):
    def broken(sender, **kwargs):
        raise ConnectionError("broker down")

    message_sent.connect(broken, dispatch_uid="tests.queues.broken")
    try:
        message = do_send(room=room, queue="orders", body=1, sent_by="alice")
    finally:
        message_sent.disconnect(dispatch_uid="tests.queues.broken")
    assert sent[-1]["message_id"] == message.pk
    assert "receiver" in caplog.text and "broker down" in caplog.text
