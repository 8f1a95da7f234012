import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from meshsite_client.protocol import encode_frame, utf8_size

from meshsite.errors import ErrorCode, MeshError, not_found
from toolkits.registry import is_reserved_name
from toolkits.schema import ToolkitDefinition

from ..events import send_room_event_on_commit
from ..models import HostedToolkit, Participant


def agent_reserving(participant: Participant, name: str) -> str | None:
    """The agent service whose instances alone may host a toolkit called `name`, if any: a
    TaskRunner answers asks through a toolkit named after itself, and nobody else may squat it."""
    from agents.models import Service

    lowered = name.lower()
    for service, multiple in Service.objects.filter(project_id=participant.room.project_id).values_list(
        "name", "allow_multiple"
    ):
        service = service.lower()
        if lowered == service or (multiple and re.fullmatch(rf"{re.escape(service)}-[0-9]+", lowered)):
            return str(service)
    return None


def check_toolkit_name_free(participant: Participant, definition: ToolkitDefinition) -> None:
    if is_reserved_name(definition.name):
        raise MeshError(ErrorCode.CONFLICT, f"{definition.name!r} is reserved for a built-in toolkit")
    reserving = agent_reserving(participant, definition.name)
    if reserving is not None and participant.agent.lower() != definition.name.lower():
        raise MeshError(
            ErrorCode.CONFLICT, f"{definition.name!r} is reserved for the agent service {reserving!r} and its instances"
        )
    if HostedToolkit.objects.filter(participant=participant, name=definition.name).exists():
        raise MeshError(ErrorCode.CONFLICT, f"this participant already hosts a toolkit {definition.name!r}")
    if (
        definition.public
        and HostedToolkit.objects.filter(room_id=participant.room_id, name=definition.name, public=True).exists()
    ):
        raise MeshError(ErrorCode.CONFLICT, f"a public toolkit named {definition.name!r} is already in this room")
    if participant.toolkits.count() >= settings.MESHSITE_MAX_TOOLKITS_PER_PARTICIPANT:
        raise MeshError(
            ErrorCode.CONFLICT,
            f"a participant hosts at most {settings.MESHSITE_MAX_TOOLKITS_PER_PARTICIPANT} toolkits",
        )
    if HostedToolkit.objects.filter(room_id=participant.room_id).count() >= settings.MESHSITE_MAX_TOOLKITS_PER_ROOM:
        raise MeshError(ErrorCode.CONFLICT, f"a room holds at most {settings.MESHSITE_MAX_TOOLKITS_PER_ROOM} toolkits")
    hosted = sum(
        utf8_size(encode_frame(tools)) + len(description.encode())
        for tools, description in participant.toolkits.values_list("tools", "description")
    )
    adding = utf8_size(encode_frame(definition.tool_records())) + len(definition.description.encode())
    if hosted + adding > settings.MESHSITE_MAX_HOSTED_BYTES:
        raise MeshError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"a participant's toolkit definitions add up to at most {settings.MESHSITE_MAX_HOSTED_BYTES} bytes",
            limit=settings.MESHSITE_MAX_HOSTED_BYTES,
        )


def do_register_toolkit(participant_id: str, definition: ToolkitDefinition) -> dict[str, Any]:
    try:
        with transaction.atomic():
            participant = (
                Participant.objects.present()
                .select_for_update()
                .select_related("room")
                .filter(pk=participant_id)
                .first()
            )
            if participant is None:
                raise MeshError(ErrorCode.PARTICIPANT_GONE, "this participant has left the room")
            check_toolkit_name_free(participant, definition)
            toolkit = HostedToolkit.objects.create(
                room_id=participant.room_id,
                participant=participant,
                name=definition.name,
                description=definition.description,
                public=definition.public,
                tools=definition.tool_records(),
            )
            record = toolkit.to_record(participant.identity)
            send_room_event_on_commit(
                participant.room_id,
                "toolkits.changed",
                {"action": "registered", "toolkit": record},
                node=participant.node,
                exclude=participant.id,
            )
            return record
    except IntegrityError:
        # Two participants raced for the same public name; the database decided.
        raise MeshError(ErrorCode.CONFLICT, f"a toolkit named {definition.name!r} was registered first") from None


@transaction.atomic
def do_unregister_toolkit(participant_id: str, name: str) -> None:
    toolkit = HostedToolkit.objects.filter(participant_id=participant_id, name=name).first()
    if toolkit is None:
        raise not_found(f"this participant hosts no toolkit named {name!r}")
    toolkit.delete()
    send_room_event_on_commit(
        toolkit.room_id,
        "toolkits.changed",
        {"action": "unregistered", "toolkit": {"name": name, "participant_id": participant_id}},
        exclude=participant_id,
    )
