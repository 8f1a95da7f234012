"""Toolkit names that other apps reserve, so rooms need not know about them.

An app registers a check in its `AppConfig.ready()`; registering a toolkit asks every check.
(The agents app reserves each service's name for that service's own instances.)
"""

from collections.abc import Callable

# (project id, toolkit name, the registering participant's vouched agent name) -> the reason the
# name is reserved for someone else, or None
Reservation = Callable[[int, str, str], str | None]
_reservations: list[Reservation] = []


def register_reservation(check: Reservation) -> None:
    if check not in _reservations:
        _reservations.append(check)


def reserved_for_someone_else(project_id: int, name: str, agent: str) -> str | None:
    for check in _reservations:
        reason = check(project_id, name, agent)
        if reason is not None:
            return reason
    return None
