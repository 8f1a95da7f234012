"""The calls, usage and trace pages rendered by the server (Django test client): who may see
them, what the filters select, latency in ms and its percentiles, pagination, and query counts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from observability.models import ToolCall, UsageRecord
from rooms.actions.projects import do_create_project
from rooms.models import Project, Room
from studio.views.calls import percentile

TRACE = "0af7651916cd43dd8448eb211c80319c"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def lobby(project: Project) -> Room:
    return Room.objects.create(project=project, name="lobby")


@pytest.fixture
def alice_client(client: Any, project: Project) -> Any:
    alice = User.objects.create_user("alice", "alice@example.com", "pw")
    project.members.add(alice)
    client.force_login(alice)
    return client


def call(room: Room, n: int = 0, **fields: Any) -> ToolCall:
    values: dict[str, Any] = {
        "call_id": f"c_{n:04d}",
        "project": room.project,
        "room": room,
        "room_name": room.name,
        "toolkit": "calc",
        "tool": "add",
        "caller_id": "p_alice",
        "caller_identity": "alice",
        "host_id": "p_bob",
        "host_identity": "bob",
        "started_at": T0 + timedelta(seconds=n),
        "latency_ms": 10.0 + n,
        "request_bytes": 40,
        "response_bytes": 2,
        "status": "ok",
    }
    values.update(fields)
    return ToolCall.objects.create(**values)


def calls_in_table(page: Any) -> list[str]:
    return [c.call_id for c in page.context["page"].object_list]


def test_the_calls_page_lists_a_projects_calls_newest_first_with_latency_in_ms(alice_client, lobby):
    call(lobby, 1, latency_ms=0.4213)
    call(lobby, 2, latency_ms=1234.5, status="error", error_code=-32010, error_message="boom")
    page = alice_client.get("/studio/acme/-/calls/")
    assert page.status_code == 200
    assert calls_in_table(page) == ["c_0002", "c_0001"]
    html = page.content.decode()
    assert ("0.42 ms" in html and "1,234 ms" in html) or "1,235 ms" in html
    assert 'title="boom">-32010' in html


def test_the_filters_select_by_caller_toolkit_tool_status_time_and_trace(alice_client, lobby):
    call(lobby, 1)
    call(lobby, 2, caller_identity="robot")
    call(lobby, 3, toolkit="search", tool="web")
    call(lobby, 4, tool="mul", status="timeout")
    call(lobby, 5, trace_id=TRACE)
    get = lambda **q: calls_in_table(alice_client.get("/studio/acme/-/calls/", q))  # noqa: E731
    assert get(caller="robot") == ["c_0002"]
    assert get(toolkit="search") == ["c_0003"]
    assert get(toolkit="calc", tool="mul") == ["c_0004"]
    assert get(status="timeout") == ["c_0004"]
    assert get(since="2026-03-01T12:00:02", until="2026-03-01T12:00:04") == ["c_0003", "c_0002"]
    assert get(trace=TRACE) == ["c_0005"]


def test_a_filter_that_does_not_parse_says_why_and_lists_nothing(alice_client, lobby):
    call(lobby, 1)
    page = alice_client.get("/studio/acme/-/calls/", {"status": "sleepy", "since": "yesterday-ish"})
    assert page.status_code == 200
    assert calls_in_table(page) == []
    assert page.context["form"].errors.keys() == {"status", "since"}
    assert "Fix the filters above" in page.content.decode()
    backwards = alice_client.get("/studio/acme/-/calls/", {"since": "2026-03-02T00:00", "until": "2026-03-01T00:00"})
    assert "&#x27;From&#x27; must be before &#x27;To&#x27;." in backwards.content.decode()


def test_latency_percentiles_per_tool(alice_client, lobby):
    for n in range(100):
        call(lobby, n, latency_ms=float(n + 1))  # 1..100 ms
    call(lobby, 100, tool="mul", latency_ms=5.0, status="error")
    page = alice_client.get("/studio/acme/-/calls/")
    rows = {row.tool: row for row in page.context["latencies"]}
    add, mul = rows["calc.add"], rows["calc.mul"]
    assert (add.calls, add.failed, add.p50, add.p95, add.p99, add.max) == (100, 0, 50.0, 95.0, 99.0, 100.0)
    assert (mul.calls, mul.failed, mul.p50) == (1, 1, 5.0)
    assert percentile([], 0.5) == 0.0


def test_the_calls_page_pages_fifty_at_a_time_with_a_pinned_number_of_queries(
    alice_client, lobby, django_assert_max_num_queries
):
    for n in range(120):
        call(lobby, n)
    alice_client.get("/studio/acme/-/calls/")  # remembers the project in the session
    # session, user, project, projects (switcher), count, the page's rows, the percentile sample
    with django_assert_max_num_queries(7):
        second = alice_client.get("/studio/acme/-/calls/", {"page": 2, "toolkit": "calc"})
    assert len(calls_in_table(second)) == 50
    assert calls_in_table(second)[0] == "c_0069"
    html = second.content.decode()
    assert "Page 2 of 3" in html
    assert 'href="?toolkit=calc&amp;page=3"' in html and 'href="?toolkit=calc&amp;page=1"' in html


def test_the_room_calls_page_shows_only_that_room(alice_client, lobby, project):
    other = Room.objects.create(project=project, name="other")
    call(lobby, 1)
    call(other, 2)
    assert calls_in_table(alice_client.get("/studio/acme/lobby/calls/")) == ["c_0001"]
    assert calls_in_table(alice_client.get("/studio/acme/other/calls/")) == ["c_0002"]


def test_pages_of_a_project_one_is_not_a_member_of_are_not_found(alice_client, lobby):
    beta = do_create_project("beta", "Beta")
    room = Room.objects.create(project=beta, name="lobby")
    call(room, 1, trace_id=TRACE)
    for url in [
        "/studio/beta/-/calls/",
        "/studio/beta/lobby/calls/",
        "/studio/beta/-/usage/",
        f"/studio/beta/-/traces/{TRACE}/",
    ]:
        assert alice_client.get(url).status_code == 404, url
    # Nor does a trace id of another project show anything in one's own.
    assert alice_client.get(f"/studio/acme/-/traces/{TRACE}/").status_code == 404


def test_the_pages_need_a_signed_in_person(client, lobby):
    response = client.get("/studio/acme/-/calls/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/studio/acme/-/calls/")


def test_the_trace_page_draws_the_tree_of_calls_with_the_usage_under_the_call_that_recorded_it(alice_client, lobby):
    root = call(
        lobby,
        1,
        toolkit="agents",
        tool="ask",
        span_id="a" * 16,
        parent_span_id="f" * 16,
        trace_id=TRACE,
        latency_ms=900.0,
        caller_identity="alice",
        host_identity="",
        node="web-1",
    )
    call(
        lobby,
        2,
        toolkit="calc",
        tool="add",
        span_id="b" * 16,
        parent_span_id="a" * 16,
        trace_id=TRACE,
        started_at=root.started_at + timedelta(milliseconds=100),
        latency_ms=200.0,
        caller_identity="assistant",
        host_identity="bob",
        node="web-2",
        cost=Decimal("0.002"),
    )
    recorder = call(
        lobby,
        3,
        call_id="c_000000000000usage0001",
        toolkit="usage",
        tool="record",
        span_id="c" * 16,
        parent_span_id="a" * 16,
        trace_id=TRACE,
        started_at=root.started_at + timedelta(milliseconds=500),
        latency_ms=3.0,
        caller_identity="assistant",
        host_identity="",
    )
    UsageRecord.objects.create(
        project=lobby.project,
        room=lobby,
        room_name="lobby",
        identity="assistant",
        agent="assistant",
        kind="llm",
        model="gpt-test",
        input_tokens=60,
        output_tokens=4,
        trace_id=TRACE,
        span_id=recorder.call_id[-16:],
        cost=Decimal("0.0001"),
        priced=True,
        created_at=root.started_at + timedelta(milliseconds=500),
        metadata={"duration_ms": 250},
    )
    call(lobby, 4, trace_id="1" * 32)  # another trace
    page = alice_client.get(f"/studio/acme/-/traces/{TRACE}/")
    assert page.status_code == 200
    rows = [(r.label, r.depth, r.kind) for r in page.context["rows"]]
    assert rows == [
        ("agents.ask", 0, "call"),
        ("calc.add", 1, "call"),
        ("usage.record", 1, "call"),
        ("llm gpt-test", 2, "usage"),
    ]
    _ask, add, _record, llm = page.context["rows"]
    assert (add.offset_ms, add.duration_ms, add.node, add.host) == (100.0, 200.0, "web-2", "bob")
    assert round(add.offset_pct, 3) == round(100 / 900 * 100, 3)
    assert (llm.offset_ms, llm.duration_ms, llm.detail) == (250.0, 250.0, "60 in / 4 out tokens")
    assert page.context["cost"] == Decimal("0.0021")
    html = page.content.decode()
    assert "900 ms" in html and "web-1" in html and "web-2" in html


def test_an_unknown_or_malformed_trace_is_a_clear_not_found(alice_client, lobby):
    missing = alice_client.get(f"/studio/acme/-/traces/{'2' * 32}/")
    assert missing.status_code == 404
    assert "Nothing was recorded for this trace" in missing.content.decode()
    assert alice_client.get("/studio/acme/-/traces/not-a-trace/").status_code == 404


def test_a_threads_message_finds_the_trace_of_its_turn(alice_client, lobby):
    at = timezone.now()
    for trace, seconds in (("3" * 32, -60), (TRACE, -5), ("4" * 32, 30)):
        UsageRecord.objects.create(
            project=lobby.project,
            room=lobby,
            room_name="lobby",
            identity="assistant",
            kind="llm",
            model="gpt-test",
            thread_id="t_1",
            trace_id=trace,
            created_at=at + timedelta(seconds=seconds),
        )
    found = alice_client.get("/studio/acme/-/traces/find/", {"thread": "t_1", "before": at.isoformat()})
    assert (found.status_code, found["Location"]) == (302, f"/studio/acme/-/traces/{TRACE}/")
    none = alice_client.get("/studio/acme/-/traces/find/", {"thread": "t_2", "before": at.isoformat()})
    assert none.status_code == 404 and "No trace was recorded for this turn" in none.content.decode()


def test_the_usage_page_sums_cost_tokens_and_calls_per_day(alice_client, lobby):
    now = timezone.now()
    UsageRecord.objects.create(
        project=lobby.project,
        room=lobby,
        room_name="lobby",
        identity="assistant",
        kind="llm",
        model="gpt-test",
        input_tokens=100,
        output_tokens=20,
        cost=Decimal("0.5"),
        priced=True,
        created_at=now,
    )
    UsageRecord.objects.create(
        project=lobby.project,
        room=lobby,
        room_name="lobby",
        identity="assistant",
        kind="llm",
        model="gpt-test",
        input_tokens=50,
        output_tokens=5,
        cost=Decimal("0.25"),
        priced=True,
        created_at=now - timedelta(days=2),
    )
    call(lobby, 1, started_at=now, cost=Decimal("0.1"))
    page = alice_client.get("/studio/acme/-/usage/", {"days": 7})
    assert page.status_code == 200
    series = page.context["series"]
    assert len(series["days"]) == 7 and series["days"][-1] == now.date().isoformat()
    assert series["usage_cost"][-1] == 0.5 and series["usage_cost"][-3] == 0.25
    assert series["tool_cost"][-1] == 0.1 and series["calls"][-1] == 1
    assert series["input_tokens"][-1] == 100 and series["output_tokens"][-3] == 5
    assert page.context["total_cost"] == "0.85"
    assert 'id="usage-series"' in page.content.decode()
    # A room of another name sees none of it.
    empty = alice_client.get("/studio/acme/other/usage/")
    assert "Nothing used in the last 30 days in other" in empty.content.decode()
