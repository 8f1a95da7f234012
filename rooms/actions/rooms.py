from django.db import IntegrityError, transaction

from ..models import ROOM_NAME_RE, Project, Room
from ..tokens import TokenClaims


class RoomAccessError(Exception):
    """The token cannot enter this room; the message is safe to show."""


def access_room(claims: TokenClaims, name: str) -> Room:
    """Fetches (or, with the `room_create` grant, creates) the room a token names."""
    if name != claims.room:
        raise RoomAccessError(f"this token is for room {claims.room!r}, not {name!r}")
    if not ROOM_NAME_RE.match(name):
        raise RoomAccessError("invalid room name")
    project = Project.objects.filter(slug=claims.project).first()
    if project is None:
        raise RoomAccessError(f"project {claims.project!r} does not exist")
    room = Room.objects.filter(project=project, name=name).select_related("project").first()
    if room is not None:
        return room
    if not claims.grants.flag("room_create"):
        raise RoomAccessError(f"room {name!r} does not exist and this token may not create it")
    return do_create_room(project, name)


def do_create_room(project: Project, name: str) -> Room:
    """Creates the room, or returns it when someone else created it first.

    Precondition: `name` matches ROOM_NAME_RE (callers check it and say why it is refused)."""
    try:
        with transaction.atomic():
            return Room.objects.create(project=project, name=name)
    except IntegrityError:
        return Room.objects.select_related("project").get(project=project, name=name)
