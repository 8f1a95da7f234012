"""Queue names, and the dead-letter queue that goes with each."""

import re

from meshsite.errors import invalid_params

QUEUE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
DLQ_SUFFIX = ".dlq"


def check_queue_name(name: object) -> str:
    if not isinstance(name, str) or not QUEUE_NAME_RE.match(name):
        raise invalid_params(
            "a queue name is 1-100 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
            queue=name if isinstance(name, str) else None,
        )
    return name


def is_dead_letter_queue(name: str) -> bool:
    return name.endswith(DLQ_SUFFIX)


def dead_letter_queue(name: str) -> str:
    """`orders` dead-letters into `orders.dlq`. A dead-letter queue has none of its own, so its
    name is never longer than a queue name plus the suffix."""
    return f"{name}{DLQ_SUFFIX}"
