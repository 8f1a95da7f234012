"""Reads of room state from the database (the source of truth behind each node's cache)."""

from typing import Any

from .models import HostedToolkit, Participant


def load_room_snapshot(room_id: int) -> tuple[list[tuple[dict[str, Any], str]], list[dict[str, Any]]]:
    """Participants present (with their node) and the toolkits they host."""
    participants = list(Participant.objects.present().filter(room_id=room_id).order_by("joined_at"))
    identities = {p.id: p.identity for p in participants}
    toolkits = [
        t.to_record(identities[t.participant_id])
        for t in HostedToolkit.objects.filter(room_id=room_id, participant_id__in=identities).order_by("id")
    ]
    return [(p.to_record(), p.node) for p in participants], toolkits


def find_hosted_toolkit(
    room_id: int, name: str, participant_id: str | None
) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """A toolkit the node's cache has not heard of yet: (toolkit, host participant, host node)."""
    query = HostedToolkit.objects.filter(room_id=room_id, name=name, participant__left_at__isnull=True).select_related(
        "participant"
    )
    query = query.filter(participant_id=participant_id) if participant_id else query.filter(public=True)
    toolkit = query.first()
    if toolkit is None:
        return None
    host = toolkit.participant
    return toolkit.to_record(host.identity), host.to_record(), host.node


def nodes_with_participants() -> set[str]:
    return set(Participant.objects.present().values_list("node", flat=True).distinct())


def find_present_participant(room_id: int, participant_id: str) -> tuple[dict[str, Any], str] | None:
    participant = Participant.objects.present().filter(room_id=room_id, pk=participant_id).first()
    return (participant.to_record(), participant.node) if participant else None
