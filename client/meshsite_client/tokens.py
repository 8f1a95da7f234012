"""Minting participant tokens over REST (protocol section 7), standard library only."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

from .errors import MeshError


class TokenError(MeshError):
    """The token endpoint refused; `status` is the HTTP status (None if unreachable)."""

    def __init__(self, message: str, *, status: int | None = None, type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type


def mint_token(
    server_url: str,
    api_key: str,
    *,
    room: str,
    identity: str,
    role: str = "user",
    name: str | None = None,
    ttl: int | None = None,
    grants: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """POST /api/v1/tokens with a project API key; returns the JSON body (`token`, `ws_url`, ...).

    Blocking: from async code, run it with `asyncio.to_thread(mint_token, ...)`.
    """
    body: dict[str, Any] = {"room": room, "identity": identity, "role": role}
    if name is not None:
        body["name"] = name
    if ttl is not None:
        body["ttl"] = ttl
    if grants is not None:
        body["grants"] = grants
    url = server_url.rstrip("/") + "/api/v1/tokens"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise _http_error(exc) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TokenError(f"cannot reach {url}: {reason}") from exc
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise TokenError(f"the token endpoint answered with something that is not JSON: {payload[:200]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise TokenError(f"the token endpoint answered without a token: {data!r}")
    return data


def _http_error(exc: urllib.error.HTTPError) -> TokenError:
    raw = b""
    with contextlib.suppress(OSError):
        raw = exc.read()
    message = f"HTTP {exc.code}"
    error_type: str | None = None
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        if isinstance(error.get("message"), str):
            message = error["message"]
        if isinstance(error.get("type"), str):
            error_type = error["type"]
    elif raw:
        message = f"HTTP {exc.code}: {raw[:200].decode(errors='replace')}"
    return TokenError(message, status=exc.code, type=error_type)
