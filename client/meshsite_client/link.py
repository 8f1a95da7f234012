"""One WebSocket session with the server, from handshake to close."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)

from .errors import AuthError, ConnectionLost, Disconnected, MeshError, Replaced
from .protocol import CloseCode, encode_frame

log = logging.getLogger("meshsite_client.link")

CLOSE_UNAUTHORIZED = CloseCode.UNAUTHORIZED
CLOSE_FORBIDDEN = CloseCode.FORBIDDEN
CLOSE_TOKEN_EXPIRED = CloseCode.TOKEN_EXPIRED
CLOSE_REPLACED = CloseCode.REPLACED

_NO_STATUS = frozenset({None, 1005, 1006})

# Server-to-client frames are not bound by the server's inbound limit (a room.ready listing many
# toolkits, a large tool output), so the client accepts more than max_frame_bytes.
MAX_INCOMING_BYTES = 64 * 2**20

TokenSource = str | Callable[[], str | Awaitable[str]]


def encode(message: dict[str, Any]) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and the server would refuse the whole frame.
    return encode_frame(message)


class Link:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ready: dict[str, Any] = {}
        self._notice_code: int | None = None
        self._notice_reason: str = ""

    def note_closing(self, params: dict[str, Any]) -> None:
        code = params.get("code")
        reason = params.get("reason")
        self._notice_code = code if isinstance(code, int) else None
        self._notice_reason = reason if isinstance(reason, str) else ""

    def close_info(self) -> tuple[int | None, str]:
        """Close code and reason, preferring what `connection.closing` announced.

        The notification exists because not every stack passes the close frame through; when the
        frame did arrive its code is authoritative, but the notice's reason is usually richer.
        """
        raw = self.ws.close_code
        # int(): websockets reports a CloseCode enum, which should not leak into event params.
        code = int(raw) if raw is not None else None
        if code in _NO_STATUS and self._notice_code is not None:
            code = self._notice_code
        reason = self._notice_reason or (self.ws.close_reason or "")
        return code, reason

    async def send(self, message: dict[str, Any]) -> None:
        text = encode(message)
        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            code, reason = self.close_info()
            raise ConnectionLost("the connection to the room was lost while sending", code=code, reason=reason) from exc

    async def send_quietly(self, message: dict[str, Any]) -> bool:
        """Send if possible; for answers and progress whose recipient may already be gone."""
        try:
            await self.send(message)
            return True
        except ConnectionLost:
            return False
        except (TypeError, ValueError):
            log.exception("cannot encode a message for the server")
            return False


def error_for_close(code: int | None, reason: str, *, refreshable: bool) -> Disconnected | None:
    """The fatal error a close code stands for, or None when reconnecting makes sense.

    4408 (token expired) is only fatal without a token callable: with one, the next attempt
    fetches a fresh token.
    """
    text = f"{reason} (close {code})" if reason else f"close {code}"
    if code in (CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN):
        return AuthError(f"the server refused the token: {text}", code=code, reason=reason)
    if code == CLOSE_TOKEN_EXPIRED and not refreshable:
        return AuthError(f"the token expired: {text}", code=code, reason=reason)
    if code == CLOSE_REPLACED:
        return Replaced(f"replaced by a newer connection of the same identity: {text}", code=code, reason=reason)
    return None


async def resolve_token(source: TokenSource) -> str:
    value: Any
    if inspect.iscoroutinefunction(source):
        value = await source()
    elif callable(source):
        # A sync callable is typically `lambda: mint_token(...)`, a blocking HTTP call that must
        # not stall the event loop (and the tool handlers on it) while the server is away.
        value = await asyncio.to_thread(source)
    else:
        value = source
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str) or not value:
        raise AuthError("no token: the token source returned nothing usable")
    return value


def with_replaces(url: str, participant_id: str | None) -> str:
    """The room URL for a reconnect: naming the previous participant lets the server retire it at
    once (after a server crash it may linger, holding its toolkit names, until declared lost)."""
    if not participant_id:
        return url
    return f"{url}{'&' if '?' in url else '?'}replaces={participant_id}"


async def open_link(url: str, token_source: TokenSource, open_timeout: float) -> Link:
    """Connect and wait for `room.ready`.

    Raises AuthError/Replaced when the server refuses (with the reason from
    `connection.closing`), ConnectionLost for anything worth retrying, MeshError for a bad URL.
    """
    token = await resolve_token(token_source)
    try:
        ws = await ws_connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=open_timeout,
            max_size=MAX_INCOMING_BYTES,
            close_timeout=5,
        )
    except InvalidURI as exc:
        raise MeshError(f"invalid room URL {url!r}: {exc}") from exc
    except InvalidStatus as exc:
        status = exc.response.status_code
        text = f"the server refused the connection: HTTP {status}"
        if status in (401, 403):
            raise AuthError(text, code=status) from exc
        raise ConnectionLost(text, code=status) from exc
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise ConnectionLost(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
    link = Link(ws)
    try:
        await asyncio.wait_for(_await_ready(link), open_timeout)
    except TimeoutError:
        await ws.close()
        raise ConnectionLost(f"no room.ready from {url} within {open_timeout}s") from None
    except BaseException:
        await ws.close()
        raise
    return link


async def _await_ready(link: Link) -> None:
    while True:
        try:
            raw = await link.ws.recv()
        except ConnectionClosed:
            code, reason = link.close_info()
            raise error_for_close(code, reason, refreshable=False) or ConnectionLost(
                f"the server closed the connection before room.ready: {reason or 'no reason'} (close {code})",
                code=code,
                reason=reason,
            ) from None
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            continue
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if message.get("method") == "connection.closing":
            link.note_closing(params)
        elif message.get("method") == "room.ready":
            link.ready = params
            if params.get("complete", True) is not False:
                return
        elif message.get("method") == "room.snapshot" and link.ready:
            # A room too large for one frame: the rest of room.ready's lists, in order.
            for key in ("participants", "toolkits"):
                more = params.get(key)
                if isinstance(more, list):
                    link.ready.setdefault(key, []).extend(more)
            if params.get("complete") is not False:
                link.ready["complete"] = True
                return
        else:
            # The protocol sends room.ready first; anything earlier is not ours to interpret.
            log.debug("ignoring a frame before room.ready: %.200r", raw)
