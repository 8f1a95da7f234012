"""Reading what a Python agent class declares, to list it before any instance runs."""

from typing import Any

from django.utils.module_loading import import_string


class ServiceClassError(Exception):
    """The class path cannot serve as an agent; the message says why."""


def schema_of(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    to_schema = getattr(value, "model_json_schema", None)  # a pydantic model class
    if callable(to_schema):
        schema = to_schema()
        return schema if isinstance(schema, dict) else None
    raise ServiceClassError(f"a schema must be a JSON Schema dict or a pydantic model, not {value!r}")


def describe_agent_class(class_path: str) -> dict[str, Any]:
    """title, description, input_schema and output_schema that the class declares."""
    try:
        agent_class = import_string(class_path)
    except ImportError as exc:
        raise ServiceClassError(f"cannot import {class_path!r}: {exc}") from None
    from meshsite_client.agents import Agent

    if not isinstance(agent_class, type) or not issubclass(agent_class, Agent):
        raise ServiceClassError(f"{class_path!r} is not a subclass of meshsite_client.agents.Agent")
    return {
        "title": getattr(agent_class, "title", "") or "",
        "description": getattr(agent_class, "description", "") or "",
        "input_schema": schema_of(getattr(agent_class, "input_schema", None)),
        "output_schema": schema_of(getattr(agent_class, "output_schema", None)),
    }
