"""Recording usage: priced at record time, settling its reservation in the same transaction.

The `usage` toolkit and the metering proxy both come through here, so usage is priced and counted
against budgets the same way whoever reports it."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from .budgets import Who, find_reservation, settle
from .models import UsageRecord
from .pricing import Amounts, price_usage


def record_usage(
    who: Who,
    *,
    kind: str,
    model: str,
    amounts: Amounts,
    thread_id: str = "",
    turn_id: str = "",
    trace_id: str = "",
    span_id: str = "",
    metadata: dict[str, Any] | None = None,
    reservation_id: str | None = None,
) -> UsageRecord:
    """Writes one usage record at the price in effect now (unpriced, cost 0, if the model has
    none) and settles `reservation_id` (-32002 if this room has no such reservation)."""
    now = timezone.now()
    price, cost = price_usage(kind, model, amounts, now)
    with transaction.atomic():
        reservation = None
        if reservation_id is not None:
            reservation = find_reservation(reservation_id, who.project_id, who.room_id, lock=True)
            settle(reservation, now)
        return UsageRecord.objects.create(
            project_id=who.project_id,
            room_id=who.room_id,
            room_name=who.room_name,
            participant_id=who.participant_id,
            identity=who.identity,
            agent=who.agent,
            kind=kind,
            model=model,
            input_tokens=amounts.input_tokens,
            output_tokens=amounts.output_tokens,
            cached_tokens=amounts.cached_tokens,
            quantity=amounts.quantity,
            thread_id=thread_id,
            turn_id=turn_id,
            trace_id=trace_id,
            span_id=span_id,
            metadata=metadata or {},
            cost=cost,
            price=price,
            priced=price is not None,
            reservation=reservation,
            created_at=now,
        )


def reprice(records: Any) -> int:
    """Prices unpriced records at the price in effect when each was recorded (after an operator
    added the missing price). Priced records are never touched. Returns how many got a price."""
    count = 0
    for record in records.filter(priced=False):
        amounts = Amounts(record.input_tokens, record.output_tokens, record.cached_tokens, record.quantity)
        price, cost = price_usage(record.kind, record.model, amounts, record.created_at)
        if price is not None:
            UsageRecord.objects.filter(pk=record.pk, priced=False).update(price=price, cost=cost, priced=True)
            count += 1
    return count
