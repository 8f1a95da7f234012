"""Usage over a real server: attributed by the server (who, where, which trace), priced when it is
recorded, held against budgets before it is spent, summed up by what the caller may read; and the
cost a tool's host reports on its answer."""

import asyncio
import time
from decimal import Decimal

import pytest
from meshsite_client.protocol import ErrorCode

from observability.models import Budget, ModelPrice, Reservation, ToolCall, UsageRecord
from tests.observability.conftest import LONG_AGO
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def db(function, *args, **kwargs):
    return asyncio.to_thread(function, *args, **kwargs)


def acme_price() -> ModelPrice:
    return ModelPrice.objects.create(
        model="acme-chat*",
        input_per_million=Decimal("2.50"),
        cached_input_per_million=Decimal("1.25"),
        output_per_million=Decimal("10.00"),
        effective_from=LONG_AGO,
    )


async def test_an_llm_usage_record_is_attributed_to_the_agent_room_thread_and_trace(ws_url, mint, project):
    async with await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent:
        usage = {"kind": "llm", "model": "gpt-x", "input_tokens": 120, "output_tokens": 30, "cached_tokens": 20}
        response = await agent.invoke(
            "usage",
            "record",
            {**usage, "thread_id": "t_0123456789abcdef", "turn_id": "turn-1"},
            _meta={"traceparent": TRACEPARENT},
        )
        recorded = response["result"]["output"]["usage"]
        assert (recorded["agent"], recorded["priced"], recorded["cost"]) == ("assistant", False, "0")
        bad = await agent.invoke("usage", "record", {**usage, "cached_tokens": 500})
        assert bad["error"]["code"] == ErrorCode.INVALID_PARAMS
    [record] = await db(lambda: list(UsageRecord.objects.filter(project=project)))
    assert (record.identity, record.agent, record.room_name, record.model) == (
        "assistant",
        "assistant",
        "lobby",
        "gpt-x",
    )
    assert (record.input_tokens, record.output_tokens, record.cached_tokens) == (120, 30, 20)
    assert (record.thread_id, record.turn_id, record.trace_id) == ("t_0123456789abcdef", "turn-1", TRACEPARENT[3:35])
    assert (record.priced, record.cost) == (False, 0)  # no price for gpt-x: flagged, never silently free


async def test_reserve_then_record_settles_and_the_summary_adds_it_up(ws_url, mint, project):
    await db(acme_price)
    await db(Budget.objects.create, project=project, amount=Decimal("1"), period="day")
    async with await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent:
        usage = {"kind": "llm", "model": "acme-chat-2026", "input_tokens": 12_345, "output_tokens": 678}
        held = (await agent.invoke("usage", "reserve", usage))["result"]["output"]
        assert held["reservation_id"].startswith("r_") and held["needs_approval"] is False
        # estimate: 12_345 * 2.50 + 678 * 10.00 per million
        assert (held["amount"], held["priced"]) == ("0.0376425", True)
        assert [(b["scope"], b["period"], b["limit"], b["spent"]) for b in held["budgets"]] == [
            ("project", "day", "1", "0")
        ]
        recorded = await agent.invoke(
            "usage",
            "record",
            {**usage, "cached_tokens": 2_345, "reservation_id": held["reservation_id"]},
            _meta={"traceparent": TRACEPARENT},
        )
        record = recorded["result"]["output"]["usage"]
        assert (record["cost"], record["priced"], record["reservation_id"]) == (
            "0.03471125",
            True,
            held["reservation_id"],
        )
        summary = (await agent.invoke("usage", "summary", {"group_by": "model"}))["result"]["output"]
        assert (summary["scope"], summary["room"], summary["currency"]) == ("room", "lobby", "USD")
        first = summary["groups"][0]  # then the usage.* calls themselves (cost 0), once the ledger has them
        assert (first["model"], first["cost"], first["input_tokens"], first["cached_tokens"]) == (
            "acme-chat-2026",
            "0.03471125",
            12_345,
            2_345,
        )
        assert (summary["total"]["cost"], summary["total"]["records"]) == ("0.03471125", 1)
        again = await agent.invoke("usage", "reserve", {"amount": "0.5"})
        assert again["result"]["output"]["budgets"][0]["spent"] == "0.03471125"
        assert again["result"]["output"]["budgets"][0]["held"] == "0"
        missing = await agent.invoke("usage", "record", {**usage, "reservation_id": "r_nope"})
        assert missing["error"]["code"] == ErrorCode.NOT_FOUND
    reservation = await db(Reservation.objects.get, public_id=held["reservation_id"])
    assert reservation.status == "settled"


async def test_a_hard_budget_refuses_with_budget_exceeded_before_anything_is_spent(ws_url, mint, project):
    await db(Budget.objects.create, project=project, amount=Decimal("1"), period="month")
    async with await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent:
        assert "result" in await agent.invoke("usage", "reserve", {"amount": "0.75"})
        refused = await agent.invoke("usage", "reserve", {"amount": 0.5})
        error = refused["error"]
        assert error["code"] == ErrorCode.BUDGET_EXCEEDED == -32008
        assert error["data"]["type"] == "budget_exceeded"
        assert (error["data"]["limit"], error["data"]["spent"], error["data"]["held"]) == ("1", "0", "0.75")
        assert (error["data"]["period"], error["data"]["scope"], error["data"]["requested"]) == (
            "month",
            "project",
            "0.5",
        )
        assert "monthly budget of 1 USD has 0.25 USD left" in error["message"]
        bad = await agent.invoke("usage", "reserve", {"kind": "llm"})
        assert bad["error"]["code"] == ErrorCode.INVALID_PARAMS


async def test_a_soft_budget_asks_for_approval_and_a_reservation_can_be_released(ws_url, mint, project):
    await db(Budget.objects.create, project=project, amount=Decimal("1"), period="day", hard=False)
    async with await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent:
        held = (await agent.invoke("usage", "reserve", {"amount": "2"}))["result"]["output"]
        assert held["needs_approval"] is True
        released = await agent.invoke("usage", "release", {"reservation_id": held["reservation_id"]})
        assert released["result"]["output"] == {"released": True}
        again = await agent.invoke("usage", "release", {"reservation_id": held["reservation_id"]})
        assert again["result"]["output"] == {"released": False}


async def test_twenty_concurrent_reservations_over_the_wire_hold_at_most_the_budget(ws_url, mint, project):
    await db(Budget.objects.create, project=project, amount=Decimal("4.5"), period="day")
    async with await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent:
        answers = await asyncio.gather(*(agent.invoke("usage", "reserve", {"amount": "1"}) for _ in range(20)))
    granted = [a for a in answers if "result" in a]
    refused = [a for a in answers if a.get("error", {}).get("code") == ErrorCode.BUDGET_EXCEEDED]
    assert (len(granted), len(refused)) == (4, 16)


async def test_the_project_summary_needs_the_usage_read_grant(ws_url, mint, project):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("ops", role="service")) as ops,
        await RawPeer.connect(ws_url("lobby"), mint("carol", grants={"usage": {"read": ["project"]}})) as carol,
        await RawPeer.connect(ws_url("lobby"), mint("dave", grants={"usage": {"read": []}})) as dave,
    ):
        assert "result" in await alice.invoke("usage", "summary", {})
        denied = await alice.invoke("usage", "summary", {"scope": "project"})
        assert denied["error"]["code"] == ErrorCode.PERMISSION_DENIED
        for peer in (ops, carol):
            answer = await peer.invoke("usage", "summary", {"scope": "project", "group_by": ["room", "day"]})
            assert answer["result"]["output"]["scope"] == "project", answer
        assert (await dave.invoke("usage", "summary", {}))["error"]["code"] == ErrorCode.PERMISSION_DENIED
        for bad_from in ("not-a-date", "2026-13-45"):
            bad = await alice.invoke("usage", "summary", {"from": bad_from})
            assert bad["error"]["code"] == ErrorCode.INVALID_PARAMS, bad


PRICED_TOOL = {
    "name": "web",
    "description": "Search the web (a paid API)",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    "output_schema": {
        "type": "object",
        "properties": {"hits": {"type": "integer"}},
        "required": ["hits"],
        "additionalProperties": False,
    },
}


def ledger_rows(count: int, **filters) -> list[ToolCall]:
    deadline = time.monotonic() + 5
    while True:
        rows = list(ToolCall.objects.filter(**filters).order_by("started_at"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


async def test_a_host_reports_its_cost_in_result_meta_and_the_caller_gets_only_the_output(ws_url, mint, project):
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("searcher", role="agent", agent="searcher")) as host,
        await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent,
    ):
        assert "result" in await host.register("search", [PRICED_TOOL])
        invoke = asyncio.create_task(agent.invoke("search", "web", {"q": "meshsite"}))
        await host.answer(await host.next_call(), {"hits": 3, "_meta": {"cost": "0.0125"}})
        assert (await invoke)["result"]["output"] == {"hits": 3}  # _meta is the server's, not the caller's
        invoke = asyncio.create_task(agent.invoke("search", "web", {"q": "free"}))
        await host.answer(await host.next_call(), {"hits": 0})
        assert (await invoke)["result"]["output"] == {"hits": 0}
        invoke = asyncio.create_task(agent.invoke("search", "web", {"q": "bad"}))
        await host.answer(await host.next_call(), {"hits": 1, "_meta": {"cost": "-1"}})
        failed = (await invoke)["error"]
        assert failed["code"] == ErrorCode.TOOL_FAILED and "_meta.cost" in failed["message"]
        rows = await db(ledger_rows, 3, project=project, toolkit="search")
        assert [(r.status, r.cost, r.caller_agent) for r in rows] == [
            ("ok", Decimal("0.0125"), "assistant"),
            ("ok", Decimal(0), "assistant"),
            ("error", Decimal(0), "assistant"),
        ]
        summary = await agent.invoke("usage", "summary", {"group_by": "tool", "tool": "search.web"})
        [group] = summary["result"]["output"]["groups"]
        assert (group["tool"], group["cost"], group["tool_cost"], group["calls"]) == (
            "search.web",
            "0.0125",
            "0.0125",
            3,
        )


async def test_with_no_budget_a_conditional_reservation_holds_and_writes_nothing(ws_url, mint, project):
    async with await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent:
        estimate = {"kind": "llm", "model": "gpt-4o-mini", "input_tokens": 100, "only_if_budgeted": True}
        held = (await agent.invoke("usage", "reserve", estimate))["result"]["output"]
        assert held == {"reservation_id": None, "needs_approval": False, "budgets": []}
    assert await asyncio.to_thread(lambda: Reservation.objects.filter(project=project).count()) == 0
