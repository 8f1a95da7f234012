"""Reading what a Python agent class declares, to list it before any instance runs."""

from typing import Any

from django.utils.module_loading import import_string


class ServiceClassError(Exception):
    """The class path cannot serve as an agent; the message says why."""


def describe_agent_class(class_path: str) -> dict[str, Any]:
    """title, description, input_schema and output_schema that the class declares."""
    try:
        agent_class = import_string(class_path)
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
