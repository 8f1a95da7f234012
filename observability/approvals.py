"""Spending past a soft budget, approved by an owner: `usage.request_approval`.

An owner is a participant whose token has the `usage.approve` grant on the reservation's scope
(`room`, or `project`, which covers every room): the server reads it from the grants it stored when
the participant joined, never from anything a participant says about itself. The server, not the
asking agent, finds the owners present, asks them (their `ui.ask_user`, Allow / Deny, a question
the server words), and writes the decision on the reservation; the agent only learns the outcome.
So no participant can approve for an owner, and an agent cannot approve its own spending.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meshsite.errors import MeshError, invalid_params, permission_denied
from rooms.grants import Grants
from rooms.models import HostedToolkit, Participant
from toolkits.base import CallContext
from toolkits.invocation import InvokeRequest

from .budgets import applicable, find_reservation, state_of
from .models import Reservation
from .money import money_text

ALLOW, DENY = "Allow", "Deny"


@dataclass(frozen=True)
class Owner:
    participant_id: str
    identity: str
    name: str

    def to_record(self) -> dict[str, str]:
        return {"id": self.participant_id, "identity": self.identity, "name": self.name}


def may_approve(grants: dict[str, Any], scope: str) -> bool:
    checks = Grants(grants if isinstance(grants, dict) else {})
    return checks.may("usage", "approve", "project") or checks.may("usage", "approve", scope)


def owners_present(room_id: int, scope: str, exclude_id: str) -> list[Owner]:
    """Owners in the room who can be asked: their token grants `usage.approve` on `scope` and they
    host a `ui` toolkit with `ask_user` (a person's tab). The asker is never its own approver."""
    asked = {
        toolkit.participant_id
        for toolkit in HostedToolkit.objects.filter(room_id=room_id, name="ui").exclude(participant_id=exclude_id)
        if any(isinstance(tool, dict) and tool.get("name") == "ask_user" for tool in toolkit.tools)
    }
    present = Participant.objects.present().filter(room_id=room_id, pk__in=asked).order_by("joined_at")
    return [Owner(p.pk, p.identity, p.name) for p in present if may_approve(p.grants, scope)]


def open_request(public_id: str, caller_id: str, project_id: int, room_id: int) -> Reservation:
    """The caller's own held reservation that needs approval; -32001/-32002/-32602 otherwise."""
    reservation = find_reservation(public_id, project_id, room_id)
    if reservation.participant_id != caller_id:
        raise permission_denied("only the participant that made a reservation may ask to approve it")
    if not reservation.needs_approval:
        raise invalid_params(f"reservation {public_id} is within every budget: it needs no approval")
    if reservation.status != Reservation.Status.HELD or reservation.expires_at <= timezone.now():
        raise invalid_params(f"reservation {public_id} no longer holds anything ({reservation.status})")
    return reservation


def question(reservation: Reservation, caller_summary: str, reason: str) -> str:
    """The server's own wording: what is spent, by whom, past which budget. The asker's reason is
    quoted as theirs."""
    currency = settings.MESHSITE_CURRENCY
    passed = []
    for budget in applicable(reservation.project_id, reservation.room_id).filter(hard=False):
        state = state_of(budget)
        if state.used > budget.amount:
            where = f"room {reservation.room_name}" if budget.room_id else "project"
            per = "daily" if budget.period == budget.Period.DAY else "monthly"
            passed.append(
                f"the {where}'s {per} soft budget of {money_text(budget.amount)} {currency} "
                f"({money_text(state.spent)} spent, {money_text(state.held)} reserved)"
            )
    text = (
        f"{caller_summary} wants to spend about {money_text(reservation.amount)} {currency}"
        f"{' on ' + reservation.model if reservation.model else ''} in room {reservation.room_name}, "
        f"past {' and '.join(passed) or 'a soft budget'}. Allow it?"
    )
    return f"{text} Their reason: {reason}" if reason else text


async def ask_owners(ctx: CallContext, owners: list[Owner], text: str, timeout: float) -> tuple[str, Owner | None]:
    """Asks every owner at once; the first to answer decides (Allow approves, any other answer
    denies) and the other questions are withdrawn. An owner whose question fails (they closed it,
    left) is not waited for. Returns (decision, who decided)."""
    arguments = {"question": text, "choices": [ALLOW, DENY]}

    async def ask(owner: Owner) -> tuple[Any, Owner]:
        request = InvokeRequest("ui", "ask_user", arguments, owner.participant_id, None, timeout, None)
        return await ctx.invoke(request, authorised=True), owner

    pending = {asyncio.create_task(ask(owner)) for owner in owners}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                with contextlib.suppress(MeshError):
                    answer, owner = task.result()
                    approved = isinstance(answer, dict) and answer.get("answer") == ALLOW
                    return (Reservation.Decision.APPROVED if approved else Reservation.Decision.DENIED), owner
        return Reservation.Decision.UNANSWERED, None
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def record_decision(public_id: str, project_id: int, room_id: int, decision: str, owner: Owner | None) -> Reservation:
    """Writes the decision on the reservation; anything but an approval also releases it (the
    spend must not happen), unless it already stopped holding."""
    now: datetime = timezone.now()
    with transaction.atomic():
        reservation = find_reservation(public_id, project_id, room_id, lock=True)
        reservation.decision = decision
        reservation.decided_by = owner.identity if owner else ""
        reservation.decided_by_id = owner.participant_id if owner else ""
        reservation.decided_at = now
        fields = ["decision", "decided_by", "decided_by_id", "decided_at"]
        if decision != Reservation.Decision.APPROVED and reservation.status == Reservation.Status.HELD:
            reservation.status, reservation.ended_at = Reservation.Status.RELEASED, now
            fields += ["status", "ended_at"]
        reservation.save(update_fields=fields)
    return reservation


REFUSALS: dict[str, str] = {
    Reservation.Decision.DENIED: "{owner} did not approve it",
    Reservation.Decision.UNANSWERED: "no owner answered in time to approve it",
    Reservation.Decision.NO_OWNER: "no owner who can approve it is in the room",
}


def outcome(reservation: Reservation) -> dict[str, Any]:
    approved = reservation.decision == Reservation.Decision.APPROVED
    owner = {"id": reservation.decided_by_id, "identity": reservation.decided_by} if reservation.decided_by else None
    record: dict[str, Any] = {
        "reservation_id": reservation.public_id,
        "approved": approved,
        "decision": reservation.decision,
        "decided_by": owner,
        "scope": reservation.approval_scope or "room",
    }
    if not approved:
        record["message"] = REFUSALS[reservation.decision].format(owner=reservation.decided_by)
    return record
