"""JSON-RPC plumbing: request ids, pending responses and frame decoding."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

from .errors import RpcError, Timeout
from .link import Link

log = logging.getLogger("meshsite_client.rpc")


def decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def error_response(request_id: Any, code: int, message: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": code, "message": message, "data": data},
    }


class PendingRequests:
    """Our requests awaiting an answer, keyed by id.

    Ids come from one counter for the client's whole life, so an answer that straggles in from
    a previous connection can never be mistaken for one on the current connection.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    async def call(
        self,
        link: Link,
        method: str,
        params: dict[str, Any] | None,
        timeout: float | None,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        self._pending[request_id] = future
        try:
            await link.send(message)
            if on_sent is not None:
                on_sent()
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            if future.done() and not future.cancelled():
                raise  # the server's own -32004 (Timeout is also a TimeoutError)
            raise Timeout(
                -32004,
                f"no answer to {method} within {timeout}s",
                {"type": "timeout", "local": True},
            ) from None
        finally:
            self._pending.pop(request_id, None)

    def resolve(self, message: dict[str, Any]) -> None:
        """Settle the request a response answers; answers nobody waits for are dropped."""
        request_id = message.get("id")
        if request_id is None:
            log.warning("the server could not read a request of ours: %r", message.get("error"))
            return
        future = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if future is None or future.done():
            log.debug("dropping a response to unknown request %r", request_id)
            return
        if "error" in message:
            future.set_exception(RpcError.from_error(message["error"]))
        else:
            future.set_result(message.get("result"))

    def fail_all(self, error: Exception) -> None:
        pending = list(self._pending.values())
        self._pending.clear()
        for future in pending:
            if not future.done():
                # A copy each: one exception object raised in many tasks would pile up tracebacks.
                future.set_exception(copy.copy(error))
