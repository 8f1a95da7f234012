"""Who a proxied request is charged to: `Authorization: Bearer <credential>`.

- a participant token (the JWT a room client connects with) → its project, room, identity and
  vouched agent; its role must be one of MESHSITE_PROXY_ROLES (agents and services by default:
  a user's browser token cannot spend the project's model budget directly);
- a project API key (`msk_…`) → its project, no room; the identity is `api-key:<key name>`.

`X-Meshsite-Project: <slug>`, when sent, must name the credential's project: a key or token of
another project is refused (403), never charged to either. Runs on a database thread.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from rooms.actions.rooms import RoomAccessError, access_room
from rooms.models import API_KEY_PREFIX, ApiKey, Room, hash_api_key
from rooms.tokens import TokenError, verify_token

from ..budgets import Who
from .errors import ProxyError, forbidden, unauthorized

# `last_used_at` of an API key is written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class Caller:
    who: Who
    project_slug: str
    # recorded in each usage record's metadata: how the request authenticated
    credential: dict[str, Any] = field(default_factory=dict)
    # a token's expiry (unix time); 0 for an API key
    expires_at: int = 0


def bearer(authorization: str) -> str:
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise unauthorized(
            "send a participant token or a project API key as 'Authorization: Bearer …' "
            "(the api_key of an OpenAI client)"
        )
    return credential.strip()


def authenticate(authorization: str, project: str = "") -> Caller:
    credential = bearer(authorization)
    caller = _by_api_key(credential) if credential.startswith(API_KEY_PREFIX) else _by_token(credential)
    if project and project != caller.project_slug:
        raise forbidden(f"this credential belongs to project {caller.project_slug!r}, not {project!r}")
    return caller


def _by_api_key(raw: str) -> Caller:
    key = ApiKey.objects.active().select_related("project").filter(key_hash=hash_api_key(raw)).first()
    if key is None:
        raise unauthorized("unknown or revoked API key")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    project = key.project
    who = Who(project.pk, None, "", "", f"api-key:{key.name}"[:200], "")
    return Caller(who, project.slug, {"api_key": key.prefix})


def _by_token(raw: str) -> Caller:
    try:
        claims = verify_token(raw)
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    if claims.role not in settings.MESHSITE_PROXY_ROLES:
        raise forbidden(
            f"a {claims.role} token may not use the model proxy (allowed: {', '.join(settings.MESHSITE_PROXY_ROLES)})"
        )
    room = Room.objects.select_related("project").filter(project__slug=claims.project, name=claims.room).first()
    if room is None:
        try:
            room = access_room(claims, claims.room)  # creates it, with the room_create grant
        except RoomAccessError as exc:
            raise ProxyError(403, str(exc), type="permission_denied", code="permission_denied") from None
    who = Who(room.project_id, room.pk, room.name, "", claims.identity, claims.agent)
    return Caller(who, room.project.slug, {"token": claims.role}, claims.expires_at)
