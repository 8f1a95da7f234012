"""Errors raised by agents (all `MeshError`s, so `except MeshError` still catches everything)."""

from __future__ import annotations

from typing import Any

from ..errors import MeshError


class AgentError(MeshError):
    """Base class of the errors raised by the agent classes."""


class MissingToolkits(AgentError):
    """The toolkits an agent `requires` did not appear in the room in time."""

    def __init__(self, agent: str, missing: list[str], timeout: float) -> None:
        self.agent = agent
        self.missing = list(missing)
        self.timeout = timeout
        super().__init__(
            f"agent {agent!r} requires toolkits that are not in the room after {timeout:g}s: {', '.join(missing)}"
        )


class InvalidAskArguments(AgentError, ValueError):
    """`arguments` do not match a TaskRunner's input schema; `errors` lists `{path, message}`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("the arguments do not match the input schema: " + _summary(errors))


class InvalidAnswer(AgentError, ValueError):
    """A TaskRunner's answer does not match its output schema (the caller gets `tool_failed`)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("the answer does not match the output schema: " + _summary(errors))


class AgentStopped(AgentError):
    """A call reached an agent that is stopping, or was still running when the drain timed out."""


def _summary(errors: list[dict[str, Any]], limit: int = 3) -> str:
    parts = [f"{e['message']} (at {e['path'] or '/'})" for e in errors[:limit]]
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)
