"""Connection lifecycle: handshake, reader loop, request plumbing and reconnects.

`RoomClient` (client.py) adds the protocol's methods on top of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

from websockets.exceptions import ConnectionClosed

from .errors import ConnectionLost, Disconnected, MeshError, MethodNotFound
from .events import EventBus
from .hosting import ToolHost
from .link import Link, TokenSource, error_for_close, open_link, resolve_token, with_replaces
from .refresh import parse_expiry, refresh_delay, retry_delay
from .rpc import PendingRequests, decode, error_response
from .state import RoomState

if TYPE_CHECKING:
    from .client import RoomClient

log = logging.getLogger("meshsite_client")

FIRST_BACKOFF = 0.1


class RoomConnection:
    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        reconnect: bool = True,
        max_backoff: float = 5.0,
        open_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self._token = token
        self._reconnect = reconnect
        self._max_backoff = max(FIRST_BACKOFF, max_backoff)
        self._open_timeout = open_timeout
        self.request_timeout = request_timeout
        self._state = RoomState()
        self._bus = EventBus()
        self._host = ToolHost(cast("RoomClient", self))
        self._rpc = PendingRequests()
        self._progress: dict[str, Callable[[Any], Any]] = {}
        self._link: Link | None = None
        self._supervisor: asyncio.Task[None] | None = None
        # With a token provider: the task keeping the current connection's token fresh.
        self._refresher: asyncio.Task[None] | None = None
        self._token_expiry: float | None = None
        self._started = False
        self._closing = False
        self._error: Disconnected | None = None
        self._done = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> Self:
        """Open the socket and wait for `room.ready`; the first attempt is never retried."""
        if self._started:
            raise MeshError("this RoomClient was already connected; create a new one")
        self._started = True
        link = await self._open()
        self._attach(link)
        self._supervisor = asyncio.create_task(self._supervise(link), name="meshsite-supervisor")
        return self

    async def close(self) -> None:
        """Leave the room: stop reconnecting, cancel running tool handlers, fail pending calls."""
        if self._closing:
            await self._done.wait()
            return
        self._closing = True
        self._host.cancel_all()
        refresher = self._refresher
        self._stop_refreshing()
        link = self._link
        if link is not None:
            with contextlib.suppress(Exception):
                await link.ws.close()
        for task in (self._supervisor, refresher):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._finish(None)

    async def wait_closed(self) -> None:
        """Wait until the client is closed; raises the fatal error (AuthError, ...) if any."""
        await self._done.wait()
        if self._error is not None:
            raise copy.copy(self._error)

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def closed(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> Disconnected | None:
        """The fatal error that ended the client, if one did."""
        return self._error

    def _finish(self, error: Disconnected | None) -> None:
        if self._done.is_set():
            return
        self._error = error
        self._link = None
        self._stop_refreshing()
        self._rpc.fail_all(error or ConnectionLost("the room client is closed"))
        self._host.cancel_all()
        if error is not None:
            self._bus.emit("connection.closed", {"code": error.code, "reason": error.reason, "error": str(error)})
        self._bus.close(error)
        self._done.set()

    async def _open(self) -> Link:
        return await open_link(self.url, self._token, self._open_timeout)

    def _attach(self, link: Link) -> None:
        self._link = link
        self._state.load_ready(link.ready)
        self._token_expiry = parse_expiry(link.ready.get("token_expires_at"))
        self._start_refreshing(link)
        self._bus.emit("room.ready", link.ready)

    # -- token refresh ---------------------------------------------------------------------

    def _start_refreshing(self, link: Link) -> None:
        """With a token provider, keep this connection's token fresh for as long as it lasts."""
        self._stop_refreshing()
        if callable(self._token) and not self._closing:
            self._refresher = asyncio.create_task(self._refresh_forever(link), name="meshsite-token-refresh")

    def _stop_refreshing(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _refresh_forever(self, link: Link) -> None:
        """Refresh the token of `link` before it expires, retrying with backoff, until it goes down.

        The participant id, hosted toolkits and running calls stay. Should every attempt fail, the
        server closes with 4408 and the supervisor reconnects with a fresh token instead.
        """
        failures = 0
        while self._link is link:
            expiry = self._token_expiry
            if expiry is None:
                log.warning("the server did not say when the token expires; it is only refreshed on reconnect")
                return
            remaining = expiry - time.time()
            await asyncio.sleep(retry_delay(failures, remaining) if failures else refresh_delay(remaining))
            if self._link is not link:
                return
            if self._token_expiry != expiry:
                failures = 0  # refreshed meanwhile (by the application's own refresh_token())
                continue
            try:
                token = await resolve_token(self._token)
                await self._refresh_on(link, token)
            except MethodNotFound:
                log.warning("the server cannot refresh tokens; the token is only refreshed on reconnect")
                return
            except Exception as exc:
                if self._link is not link:
                    return  # the connection went down meanwhile; the next one refreshes afresh
                failures += 1
                log.warning("refreshing the token failed (attempt %d), retrying: %s", failures, exc)
            else:
                failures = 0

    async def _refresh_on(self, link: Link, token: str) -> str | None:
        """Send `connection.refresh_token`; returns the new `token_expires_at` (None if unknown)."""
        result = await self._request_on(link, "connection.refresh_token", {"token": token}, self.request_timeout)
        raw = result.get("token_expires_at") if isinstance(result, dict) else None
        expires_at = raw if isinstance(raw, str) else None
        if self._link is link:
            self._token_expiry = parse_expiry(expires_at)
            self._state.token_expires_at = expires_at
            self._bus.emit("connection.token_refreshed", {"token_expires_at": expires_at})
        return expires_at

    # -- running ---------------------------------------------------------------------------

    async def _supervise(self, link: Link) -> None:
        while True:
            await self._read(link)
            if self._closing or self._done.is_set():
                return
            code, reason = link.close_info()
            fatal = error_for_close(code, reason, refreshable=callable(self._token))
            if fatal is None and not self._reconnect:
                fatal = ConnectionLost(
                    f"the connection to the room was lost ({reason or 'no reason'}, close {code})",
                    code=code,
                    reason=reason,
                )
            if fatal is not None:
                self._finish(fatal)
                return
            self._bus.emit("connection.lost", {"code": code, "reason": reason})
            new_link = await self._reconnect_loop()
            if new_link is None:
                return
            previous_id = self._state.participant.id if self._state.participant else None
            self._attach(new_link)
            link = new_link
            # Re-registration needs the reader running, so it cannot happen inline here.
            self._bus.spawn(self._restore(link, previous_id), "restoring after a reconnect")

    async def _reconnect_loop(self) -> Link | None:
        attempt = 0
        while not self._closing:
            ceiling = min(self._max_backoff, FIRST_BACKOFF * 2**attempt)
            # Jitter spreads a room's worth of clients out after a server restart.
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
            attempt += 1
            try:
                token = await resolve_token(self._token)
            except Exception as exc:
                # A token callable failing is most likely transient (its own HTTP call to a
                # server that is restarting, say), so it does not end the client.
                log.warning("reconnect attempt %d: the token source failed: %r", attempt, exc)
                continue
            try:
                previous = self._state.participant.id if self._state.participant else None
                return await open_link(with_replaces(self.url, previous), token, self._open_timeout)
            except ConnectionLost as exc:
                log.info("reconnect attempt %d failed: %s", attempt, exc)
            except Disconnected as exc:  # refused for good: AuthError, Replaced
                self._finish(exc)
                return None
            except MeshError as exc:
                log.warning("reconnect attempt %d failed: %s", attempt, exc)
        return None

    async def _restore(self, link: Link, previous_id: str | None) -> None:
        raise NotImplementedError  # provided by RoomClient

    async def _read(self, link: Link) -> None:
        try:
            async for raw in link.ws:
                try:
                    self._handle_frame(link, raw)
                except Exception:
                    log.exception("error while handling a frame from the server")
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("the reader loop failed; dropping the connection")
            with contextlib.suppress(Exception):
                await link.ws.close()
        finally:
            self._link_down(link)

    def _link_down(self, link: Link) -> None:
        # Synchronous on purpose: from here on nothing can be queued on the dead link, and every
        # waiter learns at once instead of at its timeout.
        if self._link is link:
            self._link = None
            self._stop_refreshing()
        code, reason = link.close_info()
        if self._closing:
            error: Disconnected = ConnectionLost("the room client is closed")
        else:
            error = error_for_close(code, reason, refreshable=callable(self._token)) or ConnectionLost(
                f"the connection to the room was lost ({reason or 'no reason'}, close {code})",
                code=code,
                reason=reason,
            )
        self._rpc.fail_all(error)
        self._host.cancel_all()

    def _handle_frame(self, link: Link, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            log.warning("ignoring a binary frame from the server")
            return
        message = decode(raw)
        if message is None:
            log.warning("ignoring a frame that is not a JSON object: %.200r", raw)
            return
        method = message.get("method")
        if isinstance(method, str):
            params = message.get("params")
            params = params if isinstance(params, dict) else {}
            if message.get("id") is not None:
                self._handle_request(link, message["id"], method, params)
            else:
                self._handle_notification(link, method, params)
            return
        self._rpc.resolve(message)

    def _handle_request(self, link: Link, request_id: Any, method: str, params: dict[str, Any]) -> None:
        if method == "tools.call":
            self._host.handle_call(link, request_id, params)
            return
        answer = error_response(request_id, -32601, f"unknown method {method!r}", {"type": "method_not_found"})
        self._bus.spawn(link.send_quietly(answer), "answering an unknown request")

    def _handle_notification(self, link: Link, method: str, params: dict[str, Any]) -> None:
        if method == "connection.closing":
            link.note_closing(params)
        elif method == "tools.cancelled":
            self._host.cancel(params.get("call_id"))
        elif method == "tools.progress":
            self._route_progress(params)
        elif method == "room.ready":
            self._state.load_ready(params)
            self._token_expiry = parse_expiry(params.get("token_expires_at"))
        else:
            self._state.apply(method, params)
        self._bus.emit(method, params)

    def _route_progress(self, params: dict[str, Any]) -> None:
        call_id = params.get("call_id")
        callback = self._progress.get(call_id) if isinstance(call_id, str) else None
        if callback is None:
            return
        try:
            result = callback(params.get("progress"))
        except Exception:
            log.exception("on_progress callback raised")
            return
        if inspect.isawaitable(result):
            self._bus.spawn(result, "on_progress callback")

    # -- requests --------------------------------------------------------------------------

    def _require_link(self) -> Link:
        link = self._link
        if link is not None:
            return link
        if self._error is not None:
            raise copy.copy(self._error)
        if self._done.is_set() or self._closing:
            raise ConnectionLost("the room client is closed")
        if not self._started:
            raise ConnectionLost("not connected: use `async with RoomClient(...)` or `await connect()`")
        raise ConnectionLost("not connected to the room right now (reconnecting); try again shortly")

    async def _request_on(
        self,
        link: Link,
        method: str,
        params: dict[str, Any] | None,
        timeout: float | None,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> Any:
        if self._link is not link:
            raise ConnectionLost("the connection to the room was lost before the request was sent")
        return await self._rpc.call(link, method, params, timeout, on_sent=on_sent)

    async def request(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """Send a raw JSON-RPC request and return its `result` (raises RpcError subclasses)."""
        if timeout is None:
            timeout = self._default_timeout(method, params or {})
        return await self._request_on(self._require_link(), method, params, timeout)

    def _default_timeout(self, method: str, params: dict[str, Any]) -> float:
        return self.request_timeout
