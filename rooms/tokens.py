"""Participant tokens: HS256 JWTs minted and verified by the server alone."""

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from meshsite_client.protocol import contains_nul

from .grants import ROLES, Grants, default_grants, merge_grants
from .models import ROOM_NAME_RE

ISSUER = "meshsite"
AGENT_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")
ALGORITHM = "HS256"


class TokenError(Exception):
    """The token cannot be used; the message is safe to show the client."""


def signing_key() -> str:
    if settings.MESHSITE_TOKEN_SECRET:
        return settings.MESHSITE_TOKEN_SECRET
    # Derived rather than SECRET_KEY itself, so a token never doubles as a session-signing secret.
    return hashlib.sha256(f"meshsite-tokens:{settings.SECRET_KEY}".encode()).hexdigest()


@dataclass(frozen=True)
class TokenClaims:
    project: str
    room: str
    identity: str
    role: str
    name: str
    grants: Grants
    expires_at: int
    attributes: dict[str, Any]
    # Set only by the server (agent host, service invitations, API-key holders): the agent this
    # participant runs. Attributes a participant sets about itself never count as this.
    agent: str = ""
    # A singleton token's newer connection replaces the older one of the same identity.
    singleton: bool = False


def mint_token(
    *,
    project: str,
    room: str,
    identity: str,
    role: str = "user",
    name: str = "",
    ttl: int | None = None,
    grants: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
    agent: str = "",
    singleton: bool | None = None,
) -> tuple[str, int]:
    """Returns (token, expiry as a unix time). Raises ValueError on bad input.

    `agent` vouches that the holder runs that agent (only the server and API-key holders mint
    tokens). `singleton` (default: true for agent tokens) makes a newer connection of the same
    identity replace the older one; otherwise one identity may hold several connections."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not ROOM_NAME_RE.match(room):
        raise ValueError("room must be 1-63 characters of a-z, 0-9 and '-'")
    if not identity or len(identity) > 200:
        raise ValueError("identity must be 1-200 characters")
    if contains_nul([identity, name, attributes or {}]):
        raise ValueError("identity, name and attributes may not contain the NUL character")
    if agent and (role != "agent" or not AGENT_NAME_RE.match(agent)):
        raise ValueError("agent must be a toolkit-style name and needs role 'agent'")
    ttl = settings.MESHSITE_TOKEN_DEFAULT_TTL if ttl is None else ttl
    if not 0 < ttl <= settings.MESHSITE_TOKEN_MAX_TTL:
        raise ValueError(f"ttl must be between 1 and {settings.MESHSITE_TOKEN_MAX_TTL} seconds")
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": identity,
        "project": project,
        "room": room,
        "role": role,
        "name": name or identity,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_hex(8),
        "grants": merge_grants(default_grants(role, identity), grants),
        "attributes": attributes or {},
    }
    if agent:
        claims["agent"] = agent
    if singleton if singleton is not None else bool(agent):
        claims["singleton"] = True
    return jwt.encode(claims, signing_key(), algorithm=ALGORITHM), now + ttl


def verify_token(token: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            signing_key(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    try:
        role = claims["role"]
        if role not in ROLES:
            raise TokenError("invalid token: unknown role")
        grants = claims.get("grants")
        attributes = claims.get("attributes")
        return TokenClaims(
            project=str(claims["project"]),
            room=str(claims["room"]),
            identity=str(claims["sub"]),
            role=role,
            name=str(claims.get("name") or claims["sub"]),
            grants=Grants(grants if isinstance(grants, dict) else default_grants(role, claims["sub"])),
            expires_at=int(claims["exp"]),
            attributes=attributes if isinstance(attributes, dict) else {},
            agent=str(claims.get("agent") or ""),
            singleton=claims.get("singleton") is True,
        )
    except KeyError as exc:
        raise TokenError(f"invalid token: missing claim {exc.args[0]}") from None
