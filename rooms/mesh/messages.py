"""Messages between server nodes over the bus, one type per kind (the `k` field).

The caller's node sends `call` and `cancel` to the host's node; the host's node sends `answer` and
`progress` back; any node sends `notify` (one frame for one participant) to the node holding it.
They travel in batches: one PUBLISH carries a JSON array of them (see `bus.py`).
"""

from enum import StrEnum
from typing import Any, NotRequired, TypedDict


class Kind(StrEnum):
    CALL = "call"
    ANSWER = "answer"
    PROGRESS = "progress"
    CANCEL = "cancel"
    NOTIFY = "notify"


class CallMessage(TypedDict):
    k: str  # Kind.CALL
    call_id: str
    host_id: str
    frame: str  # the tools.call frame, encoded once on the caller's node
    reply: str  # the caller's node
    caller_id: str
    on_behalf_of_id: str | None


class AnswerMessage(TypedDict):
    k: str  # Kind.ANSWER
    call_id: str
    host_id: NotRequired[str]
    result: NotRequired[Any]
    error: NotRequired[Any]  # the host's own error object
    code: NotRequired[int]  # a server-side failure (host gone), with message
    message: NotRequired[str]


class ProgressMessage(TypedDict):
    k: str  # Kind.PROGRESS
    call_id: str
    host_id: str
    progress: Any


class CancelMessage(TypedDict):
    k: str  # Kind.CANCEL
    call_id: str
    reason: str


class NotifyMessage(TypedDict):
    k: str  # Kind.NOTIFY
    to: str
    frame: str


BusMessage = CallMessage | AnswerMessage | ProgressMessage | CancelMessage | NotifyMessage
