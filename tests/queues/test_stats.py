"""Sizes, peeking and the list of queues agree with what the actions did."""

import pytest

from queues.actions import do_configure_queue, do_nack, do_receive, do_send
from queues.selectors import list_queues, peek, queue_stats

pytestmark = pytest.mark.django_db(transaction=True)


def test_stats_count_each_state(room):
    do_configure_queue(room, "q", max_deliveries=1)
    for n in range(4):
        do_send(room=room, queue="q", body=n, sent_by="alice")
    do_send(room=room, queue="q", body="later", sent_by="alice", delay=60)
    [_leased, failed] = do_receive(room=room, queue="q", consumer="robot", max_messages=2)
    do_nack(room=room, queue="q", message_id=failed.message_id, receipt=failed.receipt, error="nope")
    assert queue_stats(room, "q") == {"visible": 2, "in_flight": 1, "delayed": 1, "dead": 1}
    assert queue_stats(room, "q.dlq") == {"visible": 1, "in_flight": 0, "delayed": 0, "dead": 0}
    assert queue_stats(room, "empty") == {"visible": 0, "in_flight": 0, "delayed": 0, "dead": 0}


def test_peek_shows_the_next_messages_without_leasing_or_receipts(room):
    for n in range(3):
        do_send(room=room, queue="q", body={"n": n}, sent_by="alice")
    [_leased] = do_receive(room=room, queue="q", consumer="robot")
    looked = peek(room, "q", 10)
    assert [m["body"] for m in looked] == [{"n": 1}, {"n": 2}, {"n": 0}]
    assert [m["state"] for m in looked] == ["visible", "visible", "in_flight"]
    assert all("receipt" not in m for m in looked)
    assert [m["body"] for m in peek(room, "q", 1)] == [{"n": 1}]
    assert [d.body for d in do_receive(room=room, queue="q", consumer="robot", max_messages=5)] == [{"n": 1}, {"n": 2}]


def test_list_shows_queues_with_messages_or_settings(room, other_room):
    do_send(room=room, queue="b", body=1, sent_by="alice")
    do_send(room=room, queue="a", body=1, sent_by="alice")
    do_send(room=other_room, queue="c", body=1, sent_by="alice")
    do_configure_queue(room, "quiet", max_deliveries=9)
    listing = list_queues(room)
    assert [q["name"] for q in listing] == ["a", "b", "quiet"]
    assert listing[0] | {"settings": None} == {
        "name": "a",
        "visible": 1,
        "in_flight": 0,
        "delayed": 0,
        "dead": 0,
        "settings": None,
    }
    assert listing[2]["settings"]["max_deliveries"] == 9
