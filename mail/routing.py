"""Which mailbox and room an inbound message is for, from its recipient addresses."""

from dataclasses import dataclass

from rooms.models import ROOM_NAME_RE

from .models import Mailbox
from .parsing import split_address


@dataclass(frozen=True)
class Route:
    mailbox: Mailbox
    recipient: str
    room_name: str  # the mailbox's room, or the +tag's room (which may not exist yet)


class NoRoute(Exception):
    """No recipient of the message is an enabled mailbox (of this project); the message says so."""


def route(recipients: list[str], *, project_id: int | None = None) -> Route:
    """The first recipient that names an enabled mailbox: `local@domain` exactly, or, for a
    mailbox with `plus_rooms`, `local+room@domain` (room: a valid room name, lower-case).
    `project_id` limits the search to one project (the raw endpoint's API key)."""
    for recipient in recipients:
        local, tag, domain = split_address(recipient)
        if not local or not domain:
            continue
        query = Mailbox.objects.select_related("room", "room__project", "service").filter(
            address=f"{local}@{domain}", enabled=True, service__enabled=True
        )
        if project_id is not None:
            query = query.filter(room__project_id=project_id)
        mailbox = query.first()
        if mailbox is None:
            continue
        if not tag:
            return Route(mailbox, recipient, mailbox.room.name)
        if mailbox.plus_rooms and ROOM_NAME_RE.match(tag):
            return Route(mailbox, recipient, tag)
    shown = ", ".join(recipients[:5]) or "none"
    raise NoRoute(f"no mailbox here receives mail for {shown}")
