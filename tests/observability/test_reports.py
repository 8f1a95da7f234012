"""One vocabulary over both ledgers: totals by room, agent, identity, model, tool, day, month."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from observability.models import ToolCall, UsageRecord
from observability.reports import summarize
from rooms.models import Room

pytestmark = pytest.mark.django_db

DAY1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
DAY2 = datetime(2026, 11, 3, 23, 59, tzinfo=UTC)
START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def usage(room: Room, cost: str, at: datetime, **fields) -> None:
    fields = {"identity": "assistant", "agent": "assistant", "model": "acme-chat", "priced": True, **fields}
    UsageRecord.objects.create(
        project_id=room.project_id,
        room=room,
        room_name=room.name,
        kind="llm",
        cost=Decimal(cost),
        created_at=at,
        **fields,
    )


def call(room: Room, cost: str, at: datetime, status: str = "ok", **fields) -> None:
    fields = {"caller_identity": "assistant", "caller_agent": "assistant", **fields}
    ToolCall.objects.create(
        call_id="k_x",
        project_id=room.project_id,
        room=room,
        room_name=room.name,
        toolkit="search",
        tool="web",
        caller_id="p_a",
        started_at=at,
        latency_ms=1,
        request_bytes=1,
        response_bytes=1,
        status=status,
        cost=Decimal(cost),
        **fields,
    )


@pytest.fixture
def ledger(room, project):
    other = Room.objects.create(project=project, name="other")
    usage(room, "0.10", DAY1, input_tokens=100, output_tokens=10, cached_tokens=5, trace_id="t1")
    usage(room, "0.20", DAY2, input_tokens=200, output_tokens=20, model="acme-mini")
    usage(room, "0", DAY2, input_tokens=50, model="mystery", priced=False)
    usage(other, "1.00", DAY1, identity="bob", agent="", model="acme-chat")
    call(room, "0.05", DAY1, trace_id="t1")
    call(other, "0.50", DAY2, caller_identity="bob", caller_agent="")
    call(room, "0", DAY2, status="refused")
    usage(room, "9", datetime(2026, 10, 31, 23, 59, tzinfo=UTC))  # before the period
    return room, other


def by(summary, *dims):
    return {tuple(key[d] for d in dims): totals for key, totals in summary.groups}


def test_totals_of_a_project_add_up_usage_and_tool_costs(ledger, project):
    summary = summarize(start=START, end=END, group_by=[], project_id=project.pk)
    total = summary.total
    assert (total.cost, total.usage_cost, total.tool_cost) == (Decimal("1.85"), Decimal("1.30"), Decimal("0.55"))
    assert (total.input_tokens, total.output_tokens, total.cached_tokens) == (350, 30, 5)
    assert (total.records, total.unpriced, total.calls) == (4, 1, 2)  # the refused call is not counted
    assert summary.groups == [({}, total)]


def test_grouped_by_model_tool_calls_have_none(ledger, project):
    groups = by(summarize(start=START, end=END, group_by=["model"], project_id=project.pk), "model")
    assert {k: v.cost for k, v in groups.items()} == {
        ("acme-chat",): Decimal("1.10"),
        ("acme-mini",): Decimal("0.20"),
        ("mystery",): Decimal(0),
        (None,): Decimal("0.55"),
    }
    assert groups[("mystery",)].unpriced == 1


def test_grouped_by_tool_usage_has_none(ledger, project):
    groups = by(summarize(start=START, end=END, group_by=["tool"], project_id=project.pk), "tool")
    assert {k: (v.cost, v.calls) for k, v in groups.items()} == {
        ("search.web",): (Decimal("0.55"), 2),
        (None,): (Decimal("1.30"), 0),
    }


def test_grouped_by_room_agent_and_day(ledger, project):
    summary = summarize(start=START, end=END, group_by=["day", "room"], project_id=project.pk)
    assert [(key["day"], key["room"], totals.cost) for key, totals in summary.groups] == [
        ("2026-11-02", "lobby", Decimal("0.15")),
        ("2026-11-02", "other", Decimal("1.00")),
        ("2026-11-03", "lobby", Decimal("0.20")),
        ("2026-11-03", "other", Decimal("0.50")),
    ]
    agents = by(summarize(start=START, end=END, group_by=["agent"], project_id=project.pk), "agent")
    assert {k: v.cost for k, v in agents.items()} == {("assistant",): Decimal("0.35"), (None,): Decimal("1.50")}
    months = summarize(start=START, end=END, group_by=["month", "project"])
    assert [(key["month"], key["project"]) for key, _ in months.groups] == [("2026-11", "acme")]


def test_a_room_and_filters_narrow_it(ledger, project):
    room, _ = ledger
    only_room = summarize(start=START, end=END, group_by=[], project_id=project.pk, room_id=room.pk)
    assert only_room.total.cost == Decimal("0.35")
    traced = summarize(start=START, end=END, group_by=[], project_id=project.pk, filters={"trace_id": "t1"})
    assert (traced.total.cost, traced.total.records, traced.total.calls) == (Decimal("0.15"), 1, 1)
    # a model filter leaves tool calls out, a tool filter usage
    model = summarize(start=START, end=END, group_by=[], project_id=project.pk, filters={"model": "acme-chat"})
    assert (model.total.cost, model.total.calls) == (Decimal("1.10"), 0)
    tool = summarize(start=START, end=END, group_by=[], project_id=project.pk, filters={"tool": "search"})
    assert (tool.total.cost, tool.total.records) == (Decimal("0.55"), 0)


def test_a_record_is_json_with_decimal_strings(ledger, project):
    record = summarize(start=START, end=END, group_by=["identity"], project_id=project.pk).to_record()
    assert record["from"] == "2026-11-01T00:00:00Z" and record["currency"] == "USD"
    assert record["groups"][0] == {
        "identity": "bob",
        "cost": "1.5",
        "usage_cost": "1",
        "tool_cost": "0.5",
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "quantity": 0.0,
        "records": 1,
        "unpriced": 0,
        "calls": 1,
    }
