import json
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from meshsite.errors import ErrorCode, MeshError

from ..events import send_room_event_on_commit
from ..models import HostedToolkit, Participant, Room
from ..tokens import TokenClaims


def new_participant_id() -> str:
    return "p_" + secrets.token_hex(8)


def _emit_left(participant: Participant, reason: str) -> None:
    for toolkit in participant.toolkits.all():
        send_room_event_on_commit(
            participant.room_id,
            "toolkits.changed",
            {"action": "unregistered", "toolkit": {"name": toolkit.name, "participant_id": participant.id}},
        )
    send_room_event_on_commit(
        participant.room_id,
        "participant.left",
        {"participant_id": participant.id, "identity": participant.identity, "reason": reason},
        node=participant.node,
        exclude=participant.id,
    )


def _mark_left(participant: Participant, reason: str) -> bool:
    claimed = Participant.objects.filter(pk=participant.pk, left_at__isnull=True).update(
        left_at=timezone.now(), left_reason=reason
    )
    if claimed:
        _emit_left(participant, reason)
        HostedToolkit.objects.filter(participant=participant).delete()
    return bool(claimed)


@transaction.atomic
def do_join(room: Room, claims: TokenClaims, node: str, replaces: str = "") -> Participant:
    """Adds a participant. With a singleton token (an agent instance), older live connections of
    the same identity are replaced; otherwise one identity may hold several connections, and a
    reconnecting client names the one it `replaces` (its previous participant id, which may be a
    ghost of a crashed node still holding its toolkit names)."""
    if replaces:
        for older in Participant.objects.present().filter(pk=replaces, room=room, identity=claims.identity):
            _mark_left(older, "replaced")
    if claims.singleton:
        Room.objects.select_for_update().filter(pk=room.pk).first()  # serialises singleton joins
        for older in Participant.objects.present().filter(room=room, identity=claims.identity).select_for_update():
            _mark_left(older, "replaced")
    participant = Participant.objects.create(
        id=new_participant_id(),
        room=room,
        identity=claims.identity,
        role=claims.role,
        name=claims.name,
        attributes=claims.attributes,
        agent=claims.agent,
        grants=claims.grants.raw,
        node=node,
        joined_at=timezone.now(),
    )
    send_room_event_on_commit(
        room.pk, "participant.joined", {"participant": participant.to_record()}, node=node, exclude=participant.id
    )
    return participant


@transaction.atomic
def do_leave(participant_id: str, reason: str) -> bool:
    participant = Participant.objects.filter(pk=participant_id, left_at__isnull=True).first()
    return participant is not None and _mark_left(participant, reason)


@transaction.atomic
def do_leave_nodes(nodes: set[str], reason: str) -> int:
    """Marks every participant held by these server nodes as left; returns how many."""
    present = list(Participant.objects.present().filter(node__in=nodes).select_for_update())
    return sum(_mark_left(participant, reason) for participant in present)


@transaction.atomic
def do_set_attributes(participant_id: str, changes: dict[str, Any], limit_bytes: int) -> dict[str, Any]:
    participant = Participant.objects.select_for_update().filter(pk=participant_id, left_at__isnull=True).first()
    if participant is None:
        raise MeshError(ErrorCode.PARTICIPANT_GONE, "this participant has left the room")
    merged = {**participant.attributes}
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(json.dumps(merged)) > limit_bytes:
        raise MeshError(ErrorCode.PAYLOAD_TOO_LARGE, "attributes are too large", limit=limit_bytes)
    participant.attributes = merged
    participant.save(update_fields=["attributes"])
    record = participant.to_record()
    send_room_event_on_commit(
        participant.room_id, "participant.updated", {"participant": record}, exclude=participant.id
    )
    return record
