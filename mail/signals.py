"""anymail's `inbound` signal → `do_receive_mail`. The webhook views collect what was received
(to answer with it, or with the refusal the receiver raised)."""

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from .actions import Received, do_receive_mail
from .parsing import normalise

_local = threading.local()


@contextlib.contextmanager
def collect_received() -> Iterator[list[Received]]:
    received: list[Received] = []
    _local.received = received
    try:
        yield received
    finally:
        _local.received = None


def on_inbound(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """Stores the message; MailRefused propagates to the view (too large, no mailbox)."""
    received = do_receive_mail(normalise(event.message), esp=esp_name.lower())
    collected = getattr(_local, "received", None)
    if collected is not None:
        collected.append(received)
