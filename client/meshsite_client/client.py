"""`RoomClient`: the protocol's requests, room state and events on top of a RoomConnection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from .calls import Call
from .connection import RoomConnection
from .errors import Conflict, ConnectionLost, MeshError, RpcError
from .events import Callback, EventStream, Predicate
from .link import Link
from .records import Event, Participant, RoomInfo, ToolkitInfo
from .tools import Toolkit
from .tracing import current_traceparent

log = logging.getLogger("meshsite_client")

# The server promises one answer per invoke before its deadline; the grace only covers transit,
# and exists so a misbehaving server can never leave an invoke waiting forever.
INVOKE_GRACE = 5.0


class RoomClient(RoomConnection):
    """A participant in one room.

    ```python
    async with RoomClient("ws://localhost:8000/rooms/lobby/ws", token) as room:
        print(await room.invoke("weather", "forecast", {"city": "Lisbon"}))
    ```

    `token` may be a provider: a callable (sync or async) returning a token. The client then
    refreshes the token over the live connection before it expires (`connection.refresh_token`,
    keeping the participant id) and calls the provider again before every reconnect.
    """

    # -- state -----------------------------------------------------------------------------

    @property
    def participant(self) -> Participant:
        if self._state.participant is None:
            raise MeshError("not connected yet: no room.ready received")
        return self._state.participant

    @property
    def participants(self) -> dict[str, Participant]:
        return self._state.participants

    @property
    def toolkits(self) -> list[ToolkitInfo]:
        return self._state.toolkits

    @property
    def room(self) -> RoomInfo | None:
        return self._state.room

    @property
    def limits(self) -> dict[str, Any]:
        return self._state.limits

    @property
    def ready(self) -> dict[str, Any]:
        """The raw params of the latest `room.ready` (kept while reconnecting)."""
        return self._state.ready

    @property
    def token_expires_at(self) -> str | None:
        """When the server closes this connection (4408) unless the token is refreshed, e.g.
        "2026-11-24T11:00:00Z"; from `room.ready` and the latest refresh (None if unknown)."""
        return self._state.token_expires_at

    @property
    def hosted_toolkits(self) -> dict[str, Toolkit]:
        return dict(self._host.toolkits)

    # -- events ----------------------------------------------------------------------------

    def on(self, method: str, callback: Callback) -> Callable[[], None]:
        """Call `callback(params)` (sync or async) for each `method` event, or "*" for all.

        Sync callbacks run on the reader loop and must not block; returns an unsubscriber.
        """
        return self._bus.on(method, callback)

    def off(self, method: str, callback: Callback) -> None:
        self._bus.off(method, callback)

    def events(self, *methods: str, maxsize: int = 1000) -> EventStream:
        """An async iterator of `Event`s (all, or only `methods`), subscribed from this call on."""
        return self._bus.stream(methods, maxsize)

    async def wait_for(self, method: str, predicate: Predicate | None = None, timeout: float | None = 5.0) -> Event:
        """The next `method` event whose params satisfy `predicate`; TimeoutError otherwise."""
        return await self._bus.wait_for(method, predicate, timeout)

    # -- tools -----------------------------------------------------------------------------

    def start_invoke(
        self,
        toolkit: str,
        tool: str,
        arguments: dict[str, Any] | None = None,
        *,
        participant_id: str | None = None,
        on_behalf_of_id: str | None = None,
        timeout: float | None = None,
        call_id: str | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        traceparent: str | None = None,
    ) -> Call:
        """Start a `tools.invoke` and return its `Call` at once (raises ConnectionLost if down)."""
        link = self._require_link()
        call_id = call_id or uuid.uuid4().hex
        params: dict[str, Any] = {
            "toolkit": toolkit,
            "tool": tool,
            "arguments": arguments if arguments is not None else {},
            "call_id": call_id,
        }
        if participant_id is not None:
            params["participant_id"] = participant_id
        if on_behalf_of_id is not None:
            params["on_behalf_of_id"] = on_behalf_of_id
        if timeout is not None:
            params["timeout"] = timeout
        traceparent = traceparent or current_traceparent.get()
        if traceparent:
            params["_meta"] = {"traceparent": traceparent}
        call = Call(self, call_id)
        call._start(asyncio.create_task(self._run_call(link, call, params, on_progress)))
        return call

    async def invoke(
        self,
        toolkit: str,
        tool: str,
        arguments: dict[str, Any] | None = None,
        *,
        participant_id: str | None = None,
        on_behalf_of_id: str | None = None,
        timeout: float | None = None,
        call_id: str | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        traceparent: str | None = None,
    ) -> Any:
        """Invoke a tool and return its `output`; raises RpcError subclasses on failure."""
        call = self.start_invoke(
            toolkit,
            tool,
            arguments,
            participant_id=participant_id,
            on_behalf_of_id=on_behalf_of_id,
            timeout=timeout,
            call_id=call_id,
            on_progress=on_progress,
            traceparent=traceparent,
        )
        return await call.result()

    async def _run_call(
        self,
        link: Link,
        call: Call,
        params: dict[str, Any],
        on_progress: Callable[[Any], Any] | None,
    ) -> Any:
        if on_progress is not None:
            self._progress[call.call_id] = on_progress
        wait = self._default_timeout("tools.invoke", params)
        sent = False

        def on_sent() -> None:
            nonlocal sent
            sent = True
            call._sent.set()

        try:
            result = await self._request_on(link, "tools.invoke", params, wait, on_sent=on_sent)
        except asyncio.CancelledError:
            if sent and self._link is link:
                # Whoever awaited us gave up; the server should stop the work as well.
                self._bus.spawn(self._cancel_quietly(call.call_id), "cancelling an abandoned call")
            raise
        except RpcError as exc:
            if exc.data.get("local") and self._link is link:
                self._bus.spawn(self._cancel_quietly(call.call_id), "cancelling a timed-out call")
            raise
        finally:
            call._sent.set()
            self._progress.pop(call.call_id, None)
        if isinstance(result, dict) and "output" in result:
            return result["output"]
        return result

    async def _cancel_quietly(self, call_id: str) -> None:
        with contextlib.suppress(MeshError):
            await self.request("tools.cancel", {"call_id": call_id})

    def _default_timeout(self, method: str, params: dict[str, Any]) -> float:
        if method != "tools.invoke":
            return self.request_timeout
        timeout = params.get("timeout")
        deadline = float(timeout) if isinstance(timeout, (int, float)) else self._state.default_timeout()
        return deadline + INVOKE_GRACE

    # -- toolkits --------------------------------------------------------------------------

    async def register_toolkit(self, toolkit: Toolkit) -> ToolkitInfo:
        """Register a toolkit this client hosts; it is re-registered after every reconnect."""
        link = self._require_link()
        previous = self._host.toolkits.get(toolkit.name)
        # Installed before the request: the server may route a tools.call to it right after
        # answering, before this coroutine even resumes.
        self._host.toolkits[toolkit.name] = toolkit
        try:
            info = await self._register_on(link, toolkit)
        except BaseException:
            if self._host.toolkits.get(toolkit.name) is toolkit:
                if previous is None:
                    del self._host.toolkits[toolkit.name]
                else:
                    self._host.toolkits[toolkit.name] = previous
            raise
        return info

    async def _register_on(self, link: Link, toolkit: Toolkit) -> ToolkitInfo:
        result = await self._request_on(link, "toolkits.register", toolkit.to_wire(), self.request_timeout)
        data = result.get("toolkit") if isinstance(result, dict) else None
        info = ToolkitInfo.from_wire(data if isinstance(data, dict) else toolkit.to_wire())
        self._state.add_toolkit(info)
        return info

    async def unregister_toolkit(self, name: str) -> bool:
        link = self._require_link()
        # Forgotten first, so a reconnect racing this call does not bring it back.
        self._host.toolkits.pop(name, None)
        result = await self._request_on(link, "toolkits.unregister", {"name": name}, self.request_timeout)
        if self._state.participant is not None:
            self._state.remove_toolkit(name, self._state.participant.id)
        return bool(isinstance(result, dict) and result.get("unregistered"))

    async def list_toolkits(self, participant_id: str | None = None) -> list[ToolkitInfo]:
        params = {"participant_id": participant_id} if participant_id is not None else {}
        result = await self.request("toolkits.list", params)
        items = result.get("toolkits") if isinstance(result, dict) else None
        return [ToolkitInfo.from_wire(t) for t in items or [] if isinstance(t, dict)]

    async def _restore(self, link: Link, previous_id: str | None) -> None:
        failed: dict[str, str] = {}
        for toolkit in list(self._host.toolkits.values()):
            error = await self._reregister(link, toolkit)
            if error is not None:
                failed[toolkit.name] = error
        if self._link is not link:
            return  # dropped again while re-registering; the next reconnect starts over
        self._bus.emit(
            "connection.restored",
            {
                "participant": self.participant.to_dict(),
                "previous_participant_id": previous_id,
                "failed_toolkits": failed,
            },
        )

    async def _reregister(self, link: Link, toolkit: Toolkit) -> str | None:
        if self._host.toolkits.get(toolkit.name) is not toolkit:
            return None  # unregistered or replaced by the application meanwhile
        me = self._state.participant
        if me is not None and any(t.name == toolkit.name and t.participant_id == me.id for t in self._state.toolkits):
            return None  # the application registered it again itself after the reconnect
        for attempt in range(3):
            try:
                await self._register_on(link, toolkit)
                return None
            except Conflict as exc:
                # The server may not have processed our old connection's departure yet.
                if attempt == 2:
                    log.warning("could not re-register toolkit %s: %s", toolkit.name, exc)
                    return str(exc)
                await asyncio.sleep(0.25 * (attempt + 1))
            except ConnectionLost as exc:
                return str(exc)
            except MeshError as exc:
                log.warning("could not re-register toolkit %s: %s", toolkit.name, exc)
                return str(exc)
        return None

    # -- participants and messaging ----------------------------------------------------------

    async def set_attributes(self, attributes: dict[str, Any]) -> Participant:
        """Merge into this participant's attributes (a None value deletes the key)."""
        result = await self.request("participant.set_attributes", {"attributes": attributes})
        data = result.get("participant") if isinstance(result, dict) else None
        if not isinstance(data, dict):
            return self.participant
        participant = Participant.from_wire(data)
        self._state.set_participant(participant)
        return participant

    async def list_participants(self) -> list[Participant]:
        output = await self.invoke("participants", "list")
        items = output.get("participants") if isinstance(output, dict) else None
        return [Participant.from_wire(p) for p in items or [] if isinstance(p, dict)]

    async def send_message(self, to: str, type: str, message: Any) -> Any:
        """Send `message` to one participant (built-in `messaging.send`); returns its output."""
        return await self.invoke("messaging", "send", {"to": to, "type": type, "message": message})

    async def broadcast(self, type: str, message: Any) -> Any:
        """Send `message` to everyone else in the room (built-in `messaging.broadcast`)."""
        return await self.invoke("messaging", "broadcast", {"type": type, "message": message})

    async def refresh_token(self, token: str) -> str | None:
        """Hand the server a newer token for this connection; returns its `token_expires_at`.

        Not needed with a token provider, which is asked for fresh tokens in time automatically.
        With a plain token, later reconnects use this newer one. Raises PermissionDenied if the
        token is invalid or names another project, room, identity or role.
        """
        expires_at = await self._refresh_on(self._require_link(), token)
        if not callable(self._token):
            self._token = token
        return expires_at

    async def ping(self) -> dict[str, Any]:
        result = await self.request("ping", {})
        return result if isinstance(result, dict) else {"pong": bool(result)}
