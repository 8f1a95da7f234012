"""`usage.budgets_changed`: tells a room's participants that the budgets applying to it changed.

An agent that found no budget applying (`usage.reserve` with `only_if_budgeted` answered with no
reservation) may skip reserving for its next calls; this event, after the change commits, tells it
to ask again. Sent to the budget's room, or for a project budget to every room of the project that
has someone present (the others have nobody to tell)."""

from typing import Any

from rooms.events import send_room_event_on_commit
from rooms.models import Participant

from .models import Budget

EVENT = "usage.budgets_changed"


def announce_budget_change(*, instance: Budget, **_: Any) -> None:
    if instance.room_id is not None:
        room_ids = [instance.room_id]
    else:
        present = Participant.objects.present().filter(room__project_id=instance.project_id)
        room_ids = list(present.values_list("room_id", flat=True).distinct())
    params = {"budget_id": instance.pk, "scope": "room" if instance.room_id is not None else "project"}
    for room_id in room_ids:
        send_room_event_on_commit(room_id, EVENT, params)
