"""`message_sent`: a message became available in a queue (sent, or dead-lettered into a `.dlq`).

Sent after the sender's transaction commits (never for a rolled-back send), with keyword
arguments `room` (the room's primary key, an int), `queue` (str) and `message_id` (str); `sender`
is `QueueMessage`. A delayed message is signalled when sent, not when it becomes visible.
Receivers run in the committing thread and must be quick (enqueue a task, wake a waiter); one
that raises is logged and does not fail the send, which has already committed.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

message_sent = Signal()


def send_message_sent_on_commit(room_id: int, queue: str, message_id: str) -> None:
    from .models import QueueMessage

    def send() -> None:
        for receiver, result in message_sent.send_robust(
            sender=QueueMessage, room=room_id, queue=queue, message_id=message_id
        ):
            if isinstance(result, Exception):
                logger.error(
                    "queues.message_sent receiver %r failed for %s in %s",
                    receiver,
                    message_id,
                    queue,
                    exc_info=result,
                )

    transaction.on_commit(send)
