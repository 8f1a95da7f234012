"""A service's name is reserved as a toolkit name for its own instances: a TaskRunner answers asks
through a toolkit named after itself, and nobody else may squat it."""

import re

from .models import Service


def service_toolkit_reservation(project_id: int, name: str, agent: str) -> str | None:
    lowered = name.lower()
    if agent.lower() == lowered:
        return None
    for service, multiple in Service.objects.filter(project_id=project_id).values_list("name", "allow_multiple"):
        service = service.lower()
        if lowered == service or (multiple and re.fullmatch(rf"{re.escape(service)}-[0-9]+", lowered)):
            return f"{name!r} is reserved for the agent service {service!r} and its instances"
    return None
