"""`file_changed`: sent after the change commits, never for a rolled-back one.

Keyword arguments: `room` (rooms.models.Room), `path` (normalised), `action` ("written",
"deleted" or "moved"), `file` (the StoredFile now at `path`, or None once deleted), `version` (the
path's version after the change; it increases on every change of a path), `previous_path` (for
"moved": where the file was; None otherwise), `by` (identity of who changed it).
Receivers run synchronously in the committing thread; queue slow work (indexing) rather than
doing it in the receiver.
"""

from django.dispatch import Signal

file_changed = Signal()
