"""The errors queue actions raise: `MeshError`s (so the toolkit answers them as protocol errors),
with a class each so that Python callers (the Worker) can catch the one they expect."""

from typing import Any

from meshsite.errors import ErrorCode, MeshError


class MessageGone(MeshError):
    """No such message in that queue: acknowledged already, dead-lettered, or never sent."""

    def __init__(self, queue: str, message_id: str) -> None:
        super().__init__(
            ErrorCode.NOT_FOUND,
            f"no message {message_id!r} in queue {queue!r} (acknowledged, dead-lettered or never sent)",
            queue=queue,
            message_id=message_id,
        )


class StaleReceipt(MeshError):
    """The receipt is not the message's current one: it was delivered again since (its visibility
    timeout ran out), or it was nacked, or the receipt is wrong. The holder no longer owns it."""

    def __init__(self, queue: str, message_id: str) -> None:
        super().__init__(
            ErrorCode.CONFLICT,
            f"stale receipt for message {message_id!r} in queue {queue!r}: it was released or delivered again "
            "since this receipt was issued",
            queue=queue,
            message_id=message_id,
        )


class MessageTooLarge(MeshError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"a queue message body is limited to {limit} bytes of JSON; this one is {size}",
            size=size,
            limit=limit,
        )


def invalid(message: str, **data: Any) -> MeshError:
    return MeshError(ErrorCode.INVALID_PARAMS, message, **data)
