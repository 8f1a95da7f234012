"""Bad input to the queue actions gets a clear protocol error."""

import pytest
from meshsite_client.protocol import ErrorCode

from meshsite.errors import MeshError
from queues.actions import do_ack, do_configure_queue, do_extend, do_nack, do_receive, do_send
from queues.errors import MessageTooLarge

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("name", ["", "Orders", "-x", ".x", "a" * 101, "a/b", "a b", "ü", "a\x00", 7, None])
def test_it_refuses_bad_queue_names(room, name):
    with pytest.raises(MeshError) as refused:
        do_send(room=room, queue=name, body=1, sent_by="alice")
    assert refused.value.code == ErrorCode.INVALID_PARAMS
    assert "queue name" in refused.value.message


def test_it_refuses_a_body_over_the_limit_and_says_the_sizes(room, settings):
    settings.MESHSITE_QUEUE_MAX_MESSAGE_BYTES = 1024
    do_send(room=room, queue="q", body="x" * 1000, sent_by="alice")
    with pytest.raises(MessageTooLarge) as refused:
        do_send(room=room, queue="q", body="é" * 600, sent_by="alice")  # 1200 bytes of UTF-8
    assert refused.value.code == ErrorCode.PAYLOAD_TOO_LARGE
    assert refused.value.data == {"size": 1202, "limit": 1024}


@pytest.mark.parametrize("body", [float("nan"), {"x": float("inf")}, {1, 2}, object()])
def test_it_refuses_bodies_that_are_not_json(room, body):
    with pytest.raises(MeshError) as refused:
        do_send(room=room, queue="q", body=body, sent_by="alice")
    assert refused.value.code == ErrorCode.INVALID_PARAMS


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_messages": 0},
        {"max_messages": 101},
        {"max_messages": True},
        {"visibility_timeout": 0},
        {"visibility_timeout": -1},
        {"visibility_timeout": 50_000},
        {"visibility_timeout": "5"},
    ],
)
def test_it_refuses_bad_receive_arguments(room, arguments):
    with pytest.raises(MeshError) as refused:
        do_receive(room=room, queue="q", consumer="robot", **arguments)
    assert refused.value.code == ErrorCode.INVALID_PARAMS


def test_it_refuses_bad_delays_receipts_and_settings(room):
    with pytest.raises(MeshError, match="delay"):
        do_send(room=room, queue="q", body=1, sent_by="alice", delay=-1)
    message = do_send(room=room, queue="q", body=1, sent_by="alice")
    # a never-received message holds no receipt: an empty one must not match it
    for action in (do_ack, do_nack):
        with pytest.raises(MeshError, match="receipt") as refused:
            action(room=room, queue="q", message_id=message.pk, receipt="")
        assert refused.value.code == ErrorCode.INVALID_PARAMS
    with pytest.raises(MeshError, match="receipt"):
        do_extend(room=room, queue="q", message_id=message.pk, receipt="", visibility_timeout=1)
    with pytest.raises(MeshError, match="retry_delay"):
        do_nack(room=room, queue="q", message_id=message.pk, receipt="r", retry_delay=-3)
    with pytest.raises(MeshError, match="max_deliveries"):
        do_configure_queue(room, "q", max_deliveries=0)
    with pytest.raises(MeshError, match="unknown queue setting"):
        do_configure_queue(room, "q", colour="red")
    assert [d.body for d in do_receive(room=room, queue="q", consumer="robot")] == [1]


def test_a_nul_character_is_refused_but_its_escaped_spelling_is_not(room):
    with pytest.raises(MeshError, match="NUL") as refused:
        do_send(room=room, queue="q", body={"text": "a\x00b"}, sent_by="alice")
    assert refused.value.code == ErrorCode.INVALID_PARAMS
    do_send(room=room, queue="q", body={"text": "a\\u0000b", "more": "\\\\u0000"}, sent_by="alice")
    [delivery] = do_receive(room=room, queue="q", consumer="robot")
    assert delivery.body == {"text": "a\\u0000b", "more": "\\\\u0000"}
