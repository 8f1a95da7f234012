"""What a consumer gets from a receive."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rooms.timestamps import iso_z


@dataclass(frozen=True)
class Delivery:
    message_id: str
    receipt: str  # proves the lease: ack, nack and extend need it
    body: Any
    attempt: int  # 1 on first delivery
    sent_at: datetime
    sent_by: str
    queue: str
    last_error: str = ""  # the error of the previous failed delivery (or, in a .dlq, the last one)
    dead_attempts: int = 0  # in a dead-letter queue: deliveries the message had before it moved

    def to_record(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "receipt": self.receipt,
            "body": self.body,
            "attempt": self.attempt,
            "sent_at": iso_z(self.sent_at),
            "sent_by": self.sent_by,
            "queue": self.queue,
            "last_error": self.last_error,
            "dead_attempts": self.dead_attempts,
        }
