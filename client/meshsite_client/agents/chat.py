"""`ChatContext`: the list of chat messages an agent keeps for a conversation."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


class ChatContext:
    """Chat messages as `{"role": ..., "content": ...}` dicts, oldest first.

    `Agent.chat_context()` starts one with the agent's system message; chat agents append the
    turns. `messages` is the plain list (what most LLM APIs accept as is).
    """

    def __init__(self, system: str | None = None, messages: Iterable[dict[str, Any]] = ()) -> None:
        self.messages: list[dict[str, Any]] = []
        if system is not None:
            self.append("system", system)
        for message in messages:
            self.append(message["role"], message["content"])

    def append(self, role: str, content: Any) -> dict[str, Any]:
        """Add one message and return it; `role` is system, user, assistant or tool."""
        if role not in ROLES:
            raise ValueError(f"unknown chat role {role!r}: use one of {', '.join(ROLES)}")
        message = {"role": role, "content": content}
        self.messages.append(message)
        return message

    @property
    def system(self) -> str | None:
        """The content of the first message when it is a system message."""
        if self.messages and self.messages[0]["role"] == "system":
            content = self.messages[0]["content"]
            return content if isinstance(content, str) else None
        return None

    def copy(self) -> ChatContext:
        clone = ChatContext()
        clone.messages = copy.deepcopy(self.messages)
        return clone

    def to_list(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.messages)

    def __repr__(self) -> str:
        return f"<ChatContext {len(self.messages)} messages>"
