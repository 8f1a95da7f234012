"""W3C traceparent helpers."""

from __future__ import annotations

import re
import time

import pytest
from meshsite_client import is_valid_traceparent, new_traceparent
from meshsite_client.tracing import child_traceparent, trace_id_of

FORMAT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def test_it_makes_traceparents_in_the_w3c_format() -> None:
    value = new_traceparent()
    assert FORMAT.match(value)
    assert is_valid_traceparent(value)


def test_it_makes_a_new_trace_each_time() -> None:
    assert len({trace_id_of(new_traceparent()) for _ in range(50)}) == 50


def test_new_trace_ids_start_with_the_time_and_sort_by_it() -> None:
    before = int(time.time())
    ids = [trace_id_of(new_traceparent()) for _ in range(20)]
    after = int(time.time())
    assert all(before <= int(trace_id[:8], 16) <= after for trace_id in ids)
    assert len({trace_id[8:] for trace_id in ids}) == 20  # the rest is random


def test_it_can_stay_in_an_existing_trace() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    value = new_traceparent(trace)
    assert trace_id_of(value) == trace
    child = child_traceparent(value)
    assert trace_id_of(child) == trace
    assert child != value


def test_it_can_mark_a_trace_unsampled() -> None:
    assert new_traceparent(sampled=False).endswith("-00")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ],
)
def test_it_rejects_malformed_traceparents(value: object) -> None:
    assert not is_valid_traceparent(value)


def test_it_refuses_an_invalid_trace_id() -> None:
    with pytest.raises(ValueError):
        new_traceparent("xyz")
