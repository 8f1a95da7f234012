"""Room events leave only after commit, only from actions.

An event is a protocol notification (`method`, `params`) plus `internal` routing facts that never
reach clients (which node holds a participant, who to exclude). It goes to the room's channel-layer
group, which each server node joins once while it has participants in that room; the node applies
it to its room cache and fans it out to its local connections.
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def room_event(room_id: int, method: str, params: dict[str, Any], **internal: Any) -> dict[str, Any]:
    return {"type": "room.event", "room_id": room_id, "method": method, "params": params, "internal": internal}


def send_room_event_on_commit(room_id: int, method: str, params: dict[str, Any], **internal: Any) -> None:
    event = room_event(room_id, method, params, **internal)
    transaction.on_commit(lambda: _send(event))


def _send(event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        logger.error("no channel layer configured; room event %s dropped", event["method"])
        return
    async_to_sync(layer.group_send)(room_group(event["room_id"]), event)
