"""Importing a service's agent class, and reading what it declares to list it before any
instance runs."""

import importlib
import sys
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string


class ServiceClassError(Exception):
    """The class path cannot serve as an agent; the message says why."""


def add_agent_paths() -> None:
    """Puts the directories of `MESHSITE_AGENT_PATHS` in front of `sys.path` (once, in order), so
    agent code that is not installed can be imported by its class path."""
    missing = [path for path in settings.MESHSITE_AGENT_PATHS if path not in sys.path]
    if missing:
        sys.path[:0] = missing
        importlib.invalidate_caches()


def import_agent_class(class_path: str) -> Any:
    """The object a service's class path names (`package.module.Class`); raises ImportError."""
    add_agent_paths()
    return import_string(class_path)


def describe_agent_class(class_path: str) -> dict[str, Any]:
    """title, description, input_schema and output_schema that the class declares."""
    try:
        agent_class = import_agent_class(class_path)
    except ImportError as exc:
        raise ServiceClassError(f"cannot import {class_path!r}: {exc}") from None
    from meshsite_client.agents import Agent, json_schema_of

    if not isinstance(agent_class, type) or not issubclass(agent_class, Agent):
        raise ServiceClassError(f"{class_path!r} is not a subclass of meshsite_client.agents.Agent")
    return {
        "title": getattr(agent_class, "title", "") or "",
        "description": getattr(agent_class, "description", "") or "",
        # the same conversion the running agent uses, so listed and served schemas agree
        "input_schema": _schema(json_schema_of, getattr(agent_class, "input_schema", None), "validation"),
        "output_schema": _schema(json_schema_of, getattr(agent_class, "output_schema", None), "serialization"),
    }


def _schema(convert: Any, value: Any, mode: str) -> dict[str, Any] | None:
    try:
        schema: dict[str, Any] | None = convert(value, mode=mode)
    except TypeError as exc:
        raise ServiceClassError(str(exc)) from None
    return schema
