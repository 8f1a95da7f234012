"""`Call`: a handle on one in-flight `tools.invoke`."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .errors import NotFound

if TYPE_CHECKING:
    from .client import RoomClient


class Call:
    """Returned by `RoomClient.start_invoke`.

    The request goes out in the background; `await call` (optional) waits until it is on the
    wire and gives the same Call back, so both `call = room.start_invoke(...)` and
    `call = await room.start_invoke(...)` work.
    """

    def __init__(self, client: RoomClient, call_id: str) -> None:
        self.call_id = call_id
        self._client = client
        self._sent = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<Call {self.call_id} {state}>"

    def _start(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        # Anyone who never awaits result() should not get "exception was never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def done(self) -> bool:
        return self._task is None or self._task.done()

    async def result(self) -> Any:
        """The tool's output; raises the call's error (ToolFailed, Timeout, Cancelled, ...).

        Cancelling the awaiting task cancels the call on the server too.
        """
        assert self._task is not None
        return await self._task

    async def cancel(self) -> bool:
        """Ask the server to cancel (`tools.cancel`); False when the call had already ended."""
        if self.done():
            return False
        await self._sent.wait()
        if self.done():
            return False
        try:
            result = await self._client.request("tools.cancel", {"call_id": self.call_id})
        except NotFound:
            return False
        return bool(isinstance(result, dict) and result.get("cancelled"))

    def __await__(self) -> Generator[Any, None, Call]:
        yield from self._sent.wait().__await__()
        return self
