"""`Agent`: who an agent is (name, title, description, rules, metadata) and its chat context."""

from __future__ import annotations

import copy
import inspect
from typing import Any

from pydantic_core import to_jsonable_python

from .chat import ChatContext


def _is_setting(cls: type, key: str) -> bool:
    """A plain class attribute that keyword config may override (not a method or property)."""
    if key.startswith("_"):
        return False
    try:
        value = inspect.getattr_static(cls, key)
    except AttributeError:
        return False
    return not (
        inspect.isroutine(value)
        or isinstance(value, (property, classmethod, staticmethod))
        or inspect.isdatadescriptor(value)
    )


class Agent:
    """An agent's identity and instructions.

    Subclasses set the class attributes; keyword arguments override them per instance:

    ```python
    class Greeter(Agent):
        name = "greeter"
        description = "Greets people."
        rules = ["Be brief."]

    Greeter(title="Hello bot", greeting="Hi")  # greeting is not an attribute: in .config
    ```

    Any other keyword that names a plain class attribute (including ones a subclass adds)
    overrides it too; unknown keywords are kept in `self.config`.
    """

    name: str = ""
    title: str = ""
    description: str = ""
    rules: list[str] = []
    metadata: dict[str, Any] = {}
    kind: str = "agent"

    def __init__(
        self,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        rules: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **config: Any,
    ) -> None:
        cls = type(self)
        self.name = name if name is not None else cls.name
        self.title = title if title is not None else cls.title
        self.description = description if description is not None else cls.description
        # Copies, so an instance changing its rules or metadata never changes the class's.
        self.rules = list(rules if rules is not None else cls.rules)
        self.metadata = copy.deepcopy(metadata if metadata is not None else cls.metadata)
        self.config: dict[str, Any] = {}
        for key, value in config.items():
            if _is_setting(cls, key):
                setattr(self, key, value)
            else:
                self.config[key] = value
        if not isinstance(self.name, str):
            raise TypeError(f"an agent's name must be a string, got {self.name!r}")
        if not all(isinstance(rule, str) for rule in self.rules):
            raise TypeError("an agent's rules must be strings")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name or '(unnamed)'}>"

    @property
    def identity(self) -> str:
        return self.name

    def system_prompt(self) -> str:
        """The instructions: the description, then the rules as a list. Override to change."""
        parts = [self.description.strip()] if self.description.strip() else []
        if self.rules:
            parts.append("Rules:\n" + "\n".join(f"- {rule}" for rule in self.rules))
        return "\n\n".join(parts)

    def chat_context(self) -> ChatContext:
        """A new conversation, starting with the system message from `system_prompt()`."""
        return ChatContext(system=self.system_prompt())

    def agent_attributes(self) -> dict[str, Any]:
        """The participant attributes that tell the room what this agent is."""
        return {
            "agent": {
                "name": self.name,
                "title": self.title,
                "description": self.description,
                "kind": self.kind,
                "metadata": to_jsonable_python(self.metadata),
            }
        }
