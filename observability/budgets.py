"""Budgets, enforced before money is spent: reserve an estimate, spend, then settle with the
recorded usage (or release).

A reservation locks the budget rows that apply (the project's and the room's, in id order, with
SELECT … FOR UPDATE), then reads what the period has spent and what other reservations hold, then
adds its own: concurrent reservations against one budget are serialised on its row, so what is
held and spent never passes a hard limit by reservations, however many race. Only usage that costs
more than its estimate (or usage recorded without a reservation) can pass it, by that difference.

Spent in a period = cost of the usage records + cost the hosts reported on tool calls, of the
project (or room) since the period began (UTC day or month). Held = reservations not settled,
released or expired. A reservation past its `expires_at` holds nothing, whatever its status says;
the next reservation in its project marks it expired.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from meshsite.errors import ErrorCode, MeshError, not_found

from .models import Budget, Reservation, ToolCall, UsageRecord
from .money import money_text

ZERO = Decimal(0)


def period_start(period: str, now: datetime) -> datetime:
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if period == Budget.Period.MONTH else day


def period_end(period: str, now: datetime) -> datetime:
    start = period_start(period, now)
    if period == Budget.Period.MONTH:
        return (start + timedelta(days=32)).replace(day=1)
    return start + timedelta(days=1)


def _sum(queryset: QuerySet[Any], field: str = "cost") -> Decimal:
    value = queryset.aggregate(total=Sum(field))["total"]
    return Decimal(value) if value is not None else ZERO


def spent(project_id: int, room_id: int | None, since: datetime, until: datetime | None = None) -> Decimal:
    """What the project (or one room) spent since `since`: usage records and reported tool costs."""
    usage = UsageRecord.objects.filter(project_id=project_id, created_at__gte=since)
    calls = ToolCall.objects.filter(project_id=project_id, started_at__gte=since, cost__gt=0)
    if until is not None:
        usage, calls = usage.filter(created_at__lt=until), calls.filter(started_at__lt=until)
    if room_id is not None:
        usage, calls = usage.filter(room_id=room_id), calls.filter(room_id=room_id)
    return _sum(usage) + _sum(calls)


def held(project_id: int, room_id: int | None, now: datetime) -> Decimal:
    """What live reservations hold against the project (or one room)."""
    reservations = Reservation.objects.filter(project_id=project_id, status=Reservation.Status.HELD, expires_at__gt=now)
    if room_id is not None:
        reservations = reservations.filter(room_id=room_id)
    return _sum(reservations, "amount")


@dataclass(frozen=True)
class BudgetState:
    budget: Budget
    spent: Decimal
    held: Decimal

    @property
    def used(self) -> Decimal:
        return self.spent + self.held

    @property
    def percent(self) -> float:
        if self.budget.amount <= 0:
            return 100.0
        return float(self.used * 100 / self.budget.amount)

    def to_record(self) -> dict[str, Any]:
        budget = self.budget
        return {
            "id": budget.pk,
            "scope": budget.scope,
            "room": budget.room.name if budget.room_id and budget.room else None,
            "period": budget.period,
            "hard": budget.hard,
            "limit": money_text(budget.amount),
            "spent": money_text(self.spent),
            "held": money_text(self.held),
            "currency": settings.MESHSITE_CURRENCY,
        }


def state_of(budget: Budget, now: datetime | None = None) -> BudgetState:
    now = now or timezone.now()
    start = period_start(budget.period, now)
    return BudgetState(
        budget, spent(budget.project_id, budget.room_id, start), held(budget.project_id, budget.room_id, now)
    )


class BudgetExceeded(MeshError):
    """-32008: a hard budget would be passed. `data`: limit, spent, held, requested, period,
    scope, room, currency (amounts as decimal strings)."""

    def __init__(self, state: BudgetState, requested: Decimal) -> None:
        budget = state.budget
        where = f"room {budget.room.name}" if budget.room_id and budget.room else "project"
        currency = settings.MESHSITE_CURRENCY
        per = "daily" if budget.period == Budget.Period.DAY else "monthly"
        left = budget.amount - state.used
        reason = "is used up" if left <= 0 else f"has {money_text(left)} {currency} left"
        super().__init__(
            ErrorCode.BUDGET_EXCEEDED,
            f"budget exceeded: the {where}'s {per} budget of {money_text(budget.amount)} {currency} {reason} "
            f"({money_text(state.spent)} spent, {money_text(state.held)} reserved; {money_text(requested)} requested)",
            limit=money_text(budget.amount),
            spent=money_text(state.spent),
            held=money_text(state.held),
            requested=money_text(requested),
            period=budget.period,
            scope=budget.scope,
            room=budget.room.name if budget.room_id and budget.room else None,
            currency=currency,
            resets_at=period_end(budget.period, timezone.now()).isoformat().replace("+00:00", "Z"),
        )
        self.state = state


def applicable(project_id: int, room_id: int | None) -> QuerySet[Budget]:
    scope = Q(room__isnull=True) | Q(room_id=room_id) if room_id is not None else Q(room__isnull=True)
    return Budget.objects.filter(scope, project_id=project_id, active=True).select_related("room")


@dataclass(frozen=True)
class Who:
    """Who spends: the server's attribution, never the reporter's."""

    project_id: int
    room_id: int | None
    room_name: str
    participant_id: str
    identity: str
    agent: str


def new_reservation_id() -> str:
    return "r_" + secrets.token_hex(8)


def reserve(
    who: Who, amount: Decimal, *, kind: str = "", model: str = "", ttl: float | None = None
) -> tuple[Reservation, list[BudgetState]]:
    """Holds `amount` against every active budget of the project and room. Raises BudgetExceeded
    if a hard budget is used up or would be passed; passing a soft one sets `needs_approval`.
    Returns the reservation and the budgets' states before it."""
    ttl = settings.MESHSITE_BUDGET_RESERVATION_SECONDS if ttl is None else ttl
    with transaction.atomic():
        budgets = list(applicable(who.project_id, who.room_id).select_for_update(of=("self",)).order_by("pk"))
        now = timezone.now()  # after the lock: what others committed before it is counted
        states: list[BudgetState] = []
        approval_scope = ""  # "project" if a project budget is passed (its owners decide), else "room"
        if budgets:  # mark what expired under the locks held (the project's, or only the room's)
            expired = Reservation.objects.filter(
                project_id=who.project_id, status=Reservation.Status.HELD, expires_at__lte=now
            )
            if who.room_id is not None and all(budget.room_id is not None for budget in budgets):
                expired = expired.filter(room_id=who.room_id)
            expired.update(status=Reservation.Status.EXPIRED, ended_at=now)
        for budget in budgets:
            state = state_of(budget, now)
            states.append(state)
            if state.used >= budget.amount or state.used + amount > budget.amount:
                if budget.hard:
                    raise BudgetExceeded(state, amount)
                approval_scope = "project" if approval_scope == "project" else budget.scope
        reservation = Reservation.objects.create(
            public_id=new_reservation_id(),
            project_id=who.project_id,
            room_id=who.room_id,
            room_name=who.room_name,
            participant_id=who.participant_id,
            identity=who.identity,
            agent=who.agent,
            amount=amount,
            kind=kind,
            model=model,
            needs_approval=bool(approval_scope),
            approval_scope=approval_scope,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    return reservation, states


def find_reservation(public_id: str, project_id: int, room_id: int | None, *, lock: bool = False) -> Reservation:
    """A reservation of this project and room, or -32002."""
    in_room = Q(room_id=room_id) if room_id is not None else Q(room__isnull=True)
    reservations = Reservation.objects.filter(in_room, public_id=public_id, project_id=project_id)
    reservation = (reservations.select_for_update() if lock else reservations).first()
    if reservation is None:
        raise not_found(f"no reservation {public_id!r} in this room")
    return reservation


def settle(reservation: Reservation, now: datetime) -> None:
    """Its usage is recorded: it holds nothing any more (whatever it was: an expired or released
    reservation's usage still happened and is counted as spent)."""
    if reservation.status != Reservation.Status.SETTLED:
        reservation.status = Reservation.Status.SETTLED
        reservation.ended_at = now
        reservation.save(update_fields=["status", "ended_at"])


def release(public_id: str, project_id: int, room_id: int | None) -> bool:
    """Gives a held reservation back (the spend did not happen). False if it no longer held."""
    with transaction.atomic():
        reservation = find_reservation(public_id, project_id, room_id, lock=True)
        if reservation.status != Reservation.Status.HELD:
            return False
        reservation.status = Reservation.Status.RELEASED
        reservation.ended_at = timezone.now()
        reservation.save(update_fields=["status", "ended_at"])
    return True


def reservation_record(reservation: Reservation, states: list[BudgetState] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "reservation_id": reservation.public_id,
        "amount": money_text(reservation.amount),
        "currency": settings.MESHSITE_CURRENCY,
        "needs_approval": reservation.needs_approval,
        "expires_at": reservation.expires_at.isoformat().replace("+00:00", "Z"),
    }
    if states is not None:
        record["budgets"] = [state.to_record() for state in states]
    return record
