"""W3C Trace Context helpers.

The server continues whatever trace a request carries in `params._meta.traceparent`. A tool
handler runs with the incoming traceparent in `current_traceparent`, so calls it makes through
`ctx.room.invoke` land in the same trace without the handler passing anything along.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from contextvars import ContextVar

from .protocol import TRACEPARENT_RE, parse_traceparent

current_traceparent: ContextVar[str | None] = ContextVar("meshsite_traceparent", default=None)


def new_trace_id() -> str:
    """A new trace's id: the unix time in seconds as 8 hex digits, then 24 random ones (as AWS
    X-Ray's ids, and within W3C Trace Context, whose level 2 asks only the right-most 7 bytes to
    be random); the server makes its own the same way. Every ledger row is indexed by its trace
    id: random ids put each insert on a random page of that index, which costs more per row the
    larger the ledger grows (on SQLite, 17-18 µs a row at 80,000 rows against 10-11 µs;
    docs/architecture.md). Ids must be unique, not unguessable: no system call per id. The time
    part is never zero, so neither is the id."""
    return f"{int(time.time()):08x}{random.getrandbits(96):024x}"


def new_span_id() -> str:
    span_id = secrets.token_hex(8)
    return span_id if int(span_id, 16) else new_span_id()


def new_traceparent(trace_id: str | None = None, *, sampled: bool = True) -> str:
    """A fresh `00-<32 hex>-<16 hex>-<flags>` value; pass `trace_id` to stay in an existing trace."""
    trace = trace_id if trace_id is not None else new_trace_id()
    if not re.fullmatch(r"[0-9a-f]{32}", trace) or not int(trace, 16):
        raise ValueError(f"invalid trace id: {trace!r}")
    return f"00-{trace}-{new_span_id()}-{'01' if sampled else '00'}"


def is_valid_traceparent(value: object) -> bool:
    return parse_traceparent(value) is not None


def trace_id_of(traceparent: str) -> str:
    match = TRACEPARENT_RE.match(traceparent)
    if match is None:
        raise ValueError(f"invalid traceparent: {traceparent!r}")
    return match.group(2)


def child_traceparent(traceparent: str) -> str:
    """Same trace, new span id: for a client that wants its own span under an incoming one."""
    match = TRACEPARENT_RE.match(traceparent)
    if match is None:
        raise ValueError(f"invalid traceparent: {traceparent!r}")
    return f"{match.group(1)}-{match.group(2)}-{new_span_id()}-{match.group(4)}"
