"""W3C Trace Context: continue the caller's trace across every hop of a call."""

import random
import re
from dataclasses import dataclass
from typing import Any

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


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
    header = meta.get("traceparent") if isinstance(meta, dict) else None
    match = TRACEPARENT_RE.match(header) if isinstance(header, str) else None
    if match and match.group(1) != "0" * 32:
        return Span(match.group(1), _random_hex(16), match.group(2), match.group(3))
    return Span(_random_hex(32), _random_hex(16), "", "01")


def _random_hex(digits: int) -> str:
    # Trace and span ids must be unique, not unguessable (W3C Trace Context): no syscall needed.
    return f"{random.getrandbits(digits * 4) or 1:0{digits}x}"
