"""W3C Trace Context: continue the caller's trace across every hop of a call."""

import random
import time
from dataclasses import dataclass
from typing import Any

from meshsite_client.protocol import parse_traceparent


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    flags: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def child_span(params: dict[str, Any]) -> Span:
    """A new span under the request's `_meta.traceparent`, or the root of a new trace."""
    meta = params.get("_meta")
    parsed = parse_traceparent(meta.get("traceparent") if isinstance(meta, dict) else None)
    if parsed is not None:
        trace_id, parent_span_id, flags = parsed
        return Span(trace_id, _random_hex(16), parent_span_id, flags)
    return Span(new_trace_id(), _random_hex(16), "", "01")


def new_trace_id() -> str:
    """A new trace's id: the unix time in seconds as 8 hex digits, then 24 random ones (as AWS
    X-Ray's ids, and within W3C Trace Context, whose level 2 asks only the right-most 7 bytes to
    be random). Every ledger row is indexed by its trace id: random ids put each insert on a
    random page of that index, which costs more per row the larger the ledger grows (on SQLite,
    17-18 µs a row at 80,000 rows against 10-11 µs; docs/architecture.md)."""
    return f"{int(time.time()):08x}{random.getrandbits(96):024x}"


def _random_hex(digits: int) -> str:
    # Trace and span ids must be unique, not unguessable (W3C Trace Context): no syscall needed.
    return f"{random.getrandbits(digits * 4) or 1:0{digits}x}"
