"""W3C Trace Context: continue the caller's trace across every hop of a call."""

import random
from dataclasses import dataclass
from typing import Any

from meshsite_client.protocol import parse_traceparent
from meshsite_client.tracing import new_trace_id


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


def _random_hex(digits: int) -> str:
    # Trace and span ids must be unique, not unguessable (W3C Trace Context): no syscall needed.
    return f"{random.getrandbits(digits * 4) or 1:0{digits}x}"
