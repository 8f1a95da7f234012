"""Inviting an external (webhook) service: a signed POST with a room token; it joins by itself.

The receiver checks `X-Meshsite-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
with the service's secret, refuses old timestamps, then connects to `ws_url` with `token`.
"""

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from meshsite.errors import ErrorCode, MeshError
from rooms.models import Room
from rooms.tokens import mint_token

from .actions import do_end_dispatch
from .models import Dispatch

WEBHOOK_TIMEOUT_SECONDS = 10


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """For receivers written in Python: the check a webhook endpoint should make."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def invitation(dispatch: Dispatch, room: Room) -> dict[str, Any]:
    if not settings.MESHSITE_PUBLIC_URL:
        raise MeshError(ErrorCode.UNAVAILABLE, "webhook services need MESHSITE_PUBLIC_URL to tell agents where to join")
    token, expires = mint_token(
        project=room.project.slug,
        room=room.name,
        identity=dispatch.identity,
        role="agent",
        name=dispatch.service.title or dispatch.identity,
        agent=dispatch.identity,
    )
    base = settings.MESHSITE_PUBLIC_URL.replace("https://", "wss://").replace("http://", "ws://").rstrip("/")
    return {
        "dispatch_id": dispatch.pk,
        "service": dispatch.service.name,
        "identity": dispatch.identity,
        "project": room.project.slug,
        "room": room.name,
        "arguments": dispatch.arguments,
        "ws_url": f"{base}/rooms/{room.name}/ws",
        "token": token,
        "token_expires_at": expires,
    }


def _post(url: str, secret: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Meshsite-Signature": signature(secret, int(time.time()), body)},
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        response.read()


async def invite_webhook_service(dispatch: Dispatch, room: Room) -> None:
    service = dispatch.service
    payload = invitation(dispatch, room)
    try:
        await asyncio.to_thread(_post, service.url, service.secret, payload)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = f"the webhook {service.url} failed: {exc}"
        await sync_to_async(do_end_dispatch)(dispatch.pk, Dispatch.Status.FAILED, reason)
        raise MeshError(ErrorCode.UNAVAILABLE, reason) from None
