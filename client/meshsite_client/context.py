"""The `ToolContext` a hosted tool handler can ask for by annotating a parameter with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import RoomClient


@dataclass
class ToolContext:
    """What the host knows about one `tools.call`.

    `call_id` is the host-side id (the one `tools.cancelled` names), not the caller's.
    """

    call_id: str
    toolkit: str
    tool: str
    caller: dict[str, Any]
    on_behalf_of: dict[str, Any] | None
    deadline: datetime | None
    room: RoomClient
    traceparent: str | None = None
    _send_progress: Callable[[Any], Awaitable[None]] | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    async def progress(self, value: Any) -> None:
        """Send a `tools.progress` notification; the caller gets it under its own call_id."""
        if self._send_progress is not None:
            await self._send_progress(value)

    def progress_threadsafe(self, value: Any) -> None:
        """`progress` for sync handlers, which run in a worker thread and cannot await."""
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.progress(value), self._loop)
        # Wait so progress stays ordered before the handler's result; a short bound keeps a
        # wedged loop from freezing the worker thread.
        future.result(timeout=10)

    def remaining(self) -> float | None:
        """Seconds left before the call's deadline (None when the server sent none)."""
        if self.deadline is None:
            return None
        return (self.deadline - datetime.now(UTC)).total_seconds()


def parse_deadline(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
