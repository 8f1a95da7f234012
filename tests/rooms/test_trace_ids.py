"""The server's trace and span ids (rooms.mesh.trace)."""

import time

from meshsite_client.protocol import parse_traceparent

from rooms.mesh.trace import child_span


def test_a_request_without_a_traceparent_starts_a_time_ordered_trace() -> None:
    before = int(time.time())
    spans = [child_span({}) for _ in range(50)]
    after = int(time.time())
    for span in spans:
        assert parse_traceparent(span.traceparent) == (span.trace_id, span.span_id, "01")
        assert before <= int(span.trace_id[:8], 16) <= after
        assert span.parent_span_id == ""
    assert len({span.trace_id for span in spans}) == 50
    assert len({span.span_id for span in spans}) == 50


def test_a_request_with_a_traceparent_continues_its_trace() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    span = child_span({"_meta": {"traceparent": parent}})
    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent_span_id == "00f067aa0ba902b7"
    assert span.span_id not in ("00f067aa0ba902b7", "0" * 16)
