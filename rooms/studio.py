"""Studio's views moved to the `studio` package; these names stay importable from here."""

from studio.access import projects_for
from studio.views.rooms import OpenRoomForm, favicon, index, room_page

__all__ = ["OpenRoomForm", "favicon", "index", "projects_for", "room_page"]
