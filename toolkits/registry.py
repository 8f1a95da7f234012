"""The built-in toolkits, imported lazily on first use."""

from functools import cache

from django.utils.module_loading import import_string

from .base import BuiltinToolkit

BUILTIN_TOOLKITS: dict[str, str] = {
    "messaging": "toolkits.builtin.messaging.MessagingToolkit",
    "participants": "toolkits.builtin.participants.ParticipantsToolkit",
    "agents": "agents.toolkit.AgentsToolkit",
    "threads": "threads.toolkit.ThreadsToolkit",
    "usage": "observability.toolkit.UsageToolkit",
    "vectors": "vectors.toolkit.VectorsToolkit",
    "rag": "vectors.rag.RagToolkit",
    "queues": "queues.toolkit.QueuesToolkit",
    "storage": "files.toolkit.StorageToolkit",
}
# Reserved now so no participant can squat a name a later built-in needs.
RESERVED_NAMES = frozenset(
    {*BUILTIN_TOOLKITS, "agents", "storage", "threads", "queues", "vectors", "usage", "rag", "room", "tools"}
)


def is_reserved_name(name: str) -> bool:
    """Case-insensitively and by `<reserved>.` prefix, so that no hosted toolkit can pass for (or
    match a grant pattern of) a built-in one."""
    lowered = name.lower()
    return any(lowered == reserved or lowered.startswith(f"{reserved}.") for reserved in RESERVED_NAMES)


@cache
def get_builtin(name: str) -> BuiltinToolkit | None:
    path = BUILTIN_TOOLKITS.get(name)
    if path is None:
        return None
    toolkit_class: type[BuiltinToolkit] = import_string(path)
    return toolkit_class()


def all_builtins() -> list[BuiltinToolkit]:
    return [toolkit for name in BUILTIN_TOOLKITS if (toolkit := get_builtin(name)) is not None]
