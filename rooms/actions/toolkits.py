from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from meshsite_client.protocol import encode_frame, utf8_size

from meshsite.errors import ErrorCode, MeshError, not_found
from toolkits.registry import is_reserved_name
from toolkits.schema import ToolkitDefinition

from ..events import send_room_event_on_commit
from ..models import HostedToolkit, Participant
from ..reservations import reserved_for_someone_else


def check_toolkit_name_free(participant: Participant, definition: ToolkitDefinition) -> None:
    if is_reserved_name(definition.name):
        raise MeshError(ErrorCode.CONFLICT, f"{definition.name!r} is reserved for a built-in toolkit")
    reason = reserved_for_someone_else(participant.room.project_id, definition.name, participant.agent)
    if reason is not None:
        raise MeshError(ErrorCode.CONFLICT, reason)
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
