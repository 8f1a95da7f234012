"""Budgets hold before money is spent: reserve, spend, settle (or release); hard refuses, soft asks."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from meshsite_client.protocol import ErrorCode

from meshsite.errors import MeshError
from observability import budgets
from observability.budgets import BudgetExceeded, period_end, period_start, release, reserve, state_of
from observability.models import Budget, Reservation, ToolCall, UsageRecord
from observability.pricing import Amounts
from observability.usage import record_usage
from rooms.models import Room

pytestmark = pytest.mark.django_db


def spend(who, amount: str, **kwargs) -> UsageRecord:
    """Usage already paid for (no price needed: the cost is written as is)."""
    return UsageRecord.objects.create(
        project_id=who.project_id,
        room_id=who.room_id,
        room_name=who.room_name,
        identity=who.identity,
        kind="llm",
        model="acme-chat",
        cost=Decimal(amount),
        priced=True,
        **kwargs,
    )


def test_periods_are_utc_days_and_months():
    moment = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert period_start("day", moment) == datetime(2026, 12, 31, tzinfo=UTC)
    assert period_start("month", moment) == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_end("month", moment) == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_end("day", moment) == datetime(2027, 1, 1, tzinfo=UTC)


def test_without_budgets_a_reservation_is_granted(who):
    reservation, states = reserve(who, Decimal("5"))
    assert (reservation.status, reservation.needs_approval, states) == ("held", False, [])
    assert reservation.public_id.startswith("r_") and reservation.expires_at > timezone.now()


def test_a_hard_budget_refuses_what_would_pass_it_with_limit_spent_and_period(who, budget):
    budget("10", period="day")
    spend(who, "9.50")
    spend(who, "100", created_at=timezone.now() - timedelta(days=2))  # an earlier day
    reserve(who, Decimal("0.25"))
    with pytest.raises(BudgetExceeded) as refused:
        reserve(who, Decimal("0.30"))
    error = refused.value
    assert error.code == ErrorCode.BUDGET_EXCEEDED == -32008
    assert error.data | {"resets_at": None} == {
        "limit": "10",
        "spent": "9.5",
        "held": "0.25",
        "requested": "0.3",
        "period": "day",
        "scope": "project",
        "room": None,
        "currency": "USD",
        "resets_at": None,
    }
    assert "daily budget of 10 USD has 0.25 USD left (9.5 spent, 0.25 reserved; 0.3 requested)" in error.message
    assert reserve(who, Decimal("0.25"))[0].status == "held"  # exactly up to the limit
    with pytest.raises(BudgetExceeded, match="is used up"):
        reserve(who, Decimal("0"))  # nothing more once it is used up, not even an unpriced estimate


def test_a_soft_budget_grants_the_reservation_but_asks_for_approval(who, budget):
    budget("1", hard=False)
    spend(who, "0.90")
    small, _ = reserve(who, Decimal("0.05"))
    large, states = reserve(who, Decimal("0.50"))
    assert (small.needs_approval, large.needs_approval) == (False, True)
    assert [s.to_record()["held"] for s in states] == ["0.05"]


def test_a_room_budget_counts_only_its_room_and_the_project_budget_every_room(who, budget, project):
    other = Room.objects.create(project=project, name="other")
    budget("5", room=Room.objects.get(pk=who.room_id))
    budget("8")
    spend(budgets.Who(project.pk, other.pk, "other", "", "bob", ""), "4")
    spend(who, "3")
    # room: 3 of 5 spent; project: 7 of 8
    with pytest.raises(BudgetExceeded) as refused:
        reserve(who, Decimal("1.5"))
    assert (refused.value.data["scope"], refused.value.data["spent"]) == ("project", "7")
    other_who = budgets.Who(project.pk, other.pk, "other", "", "bob", "")
    reserve(other_who, Decimal("1"))  # the other room has no room budget: only the project's
    with pytest.raises(BudgetExceeded):
        reserve(who, Decimal("0.5"))  # 7 spent + 1 held elsewhere in the project


def test_tool_costs_reported_by_hosts_count_as_spent(who, budget):
    budget("1")
    ToolCall.objects.create(
        call_id="k_1",
        project_id=who.project_id,
        room_id=who.room_id,
        room_name=who.room_name,
        toolkit="search",
        tool="web",
        caller_id="p_a",
        caller_identity="assistant",
        started_at=timezone.now(),
        latency_ms=1,
        request_bytes=1,
        response_bytes=1,
        status="ok",
        cost=Decimal("0.75"),
    )
    assert state_of(Budget.objects.get()).spent == Decimal("0.75")
    with pytest.raises(BudgetExceeded):
        reserve(who, Decimal("0.5"))


def test_recording_the_usage_settles_its_reservation(who, budget, price):
    budget("1")
    price(input_per_million="100", output_per_million="200")
    reservation, _ = reserve(who, Decimal("0.6"))
    with pytest.raises(BudgetExceeded):
        reserve(who, Decimal("0.6"))
    record = record_usage(
        who,
        kind="llm",
        model="acme-chat",
        amounts=Amounts(input_tokens=1_000, output_tokens=500),
        reservation_id=reservation.public_id,
    )
    reservation.refresh_from_db()
    assert (record.cost, record.reservation, reservation.status) == (Decimal("0.2"), reservation, "settled")
    state = state_of(Budget.objects.get())
    assert (state.spent, state.held) == (Decimal("0.2"), Decimal(0))
    assert record.to_record()["reservation_id"] == reservation.public_id
    reserve(who, Decimal("0.6"))  # 0.2 spent: the rest of the budget is free again


def test_a_reservation_of_another_room_cannot_be_settled_or_released(who, project):
    reservation, _ = reserve(who, Decimal("1"))
    other = Room.objects.create(project=project, name="other")
    stranger = budgets.Who(project.pk, other.pk, "other", "", "bob", "")
    with pytest.raises(MeshError) as missing:
        record_usage(stranger, kind="llm", model="x", amounts=Amounts(), reservation_id=reservation.public_id)
    assert missing.value.code == ErrorCode.NOT_FOUND
    assert not UsageRecord.objects.exists()  # nothing half-recorded
    with pytest.raises(MeshError):
        release(reservation.public_id, project.pk, other.pk)


def test_a_released_or_expired_reservation_holds_nothing(who, budget):
    budget("1")
    kept, _ = reserve(who, Decimal("0.9"))
    assert release(kept.public_id, who.project_id, who.room_id) is True
    assert release(kept.public_id, who.project_id, who.room_id) is False
    brief, _ = reserve(who, Decimal("0.9"), ttl=60)
    Reservation.objects.filter(pk=brief.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    after, _ = reserve(who, Decimal("0.9"))  # the expired one no longer counts...
    brief.refresh_from_db()
    assert (brief.status, after.status) == ("expired", "held")  # ...and is marked so
    # usage recorded late against an expired reservation still settles it (and counts as spent)
    record_usage(who, kind="llm", model="x", amounts=Amounts(), reservation_id=brief.public_id)
    brief.refresh_from_db()
    assert brief.status == "settled"


def test_an_inactive_budget_does_not_apply(who, budget):
    budget("0", active=False)
    assert reserve(who, Decimal("1"))[0].status == "held"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_reservations_never_hold_past_a_nearly_spent_budget(who, budget):
    budget("10")
    spend(who, "5.50")  # 4.50 left: room for four reservations of 1.00, not five
    barrier = threading.Barrier(20)
    granted: list[str] = []
    refused: list[dict] = []
    failures: list[BaseException] = []

    def race() -> None:
        try:
            barrier.wait(timeout=10)
            reservation, _ = reserve(who, Decimal("1.00"))
            granted.append(reservation.public_id)
        except BudgetExceeded as exc:
            refused.append(exc.data)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    assert (len(granted), len(refused)) == (4, 16)
    state = state_of(Budget.objects.get())
    assert (state.spent, state.held) == (Decimal("5.5"), Decimal("4"))
    assert state.used <= Decimal("10")
    # every refusal saw the others' reservations: what it reports leaves no room for 1.00 more
    assert all(Decimal(d["spent"]) + Decimal(d["held"]) + 1 > 10 for d in refused)
    # settling each at a higher actual cost than reserved overspends by at most that difference
    for public_id in granted:
        record_usage(who, kind="llm", model="x", amounts=Amounts(), reservation_id=public_id)
    assert state_of(Budget.objects.get()).held == 0
