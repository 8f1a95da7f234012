from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from toolkits.registry import RESERVED_NAMES
from toolkits.schema import ToolkitDefinition

from ..errors import ErrorCode, MeshError, not_found
from ..events import send_room_event_on_commit
from ..models import HostedToolkit, Participant


def check_toolkit_name_free(participant: Participant, definition: ToolkitDefinition) -> None:
    if definition.name in RESERVED_NAMES:
        raise MeshError(ErrorCode.CONFLICT, f"{definition.name!r} is reserved for a built-in toolkit")
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


def do_register_toolkit(participant_id: str, definition: ToolkitDefinition) -> dict[str, Any]:
    try:
        with transaction.atomic():
            participant = Participant.objects.present().select_for_update().filter(pk=participant_id).first()
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
