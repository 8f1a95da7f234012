"""A raw protocol peer over a real WebSocket, for tests that speak the wire format directly."""

import asyncio
import itertools
import json
import uuid
from typing import Any, Self

import websockets
from websockets.asyncio.client import ClientConnection


class RawPeer:
    """Reads every frame in a background task, so several waits can run at once."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.inbox: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()
        self.ready: dict[str, Any] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                async with self.arrived:
                    self.inbox.append(json.loads(frame))
                    self.arrived.notify_all()
        except websockets.ConnectionClosed:
            pass  # the close code stays readable on self.ws
        finally:
            async with self.arrived:
                self.arrived.notify_all()

    @classmethod
    async def connect(cls, url: str, token: str, **kwargs: Any) -> Self:
        ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **kwargs)
        peer = cls(ws)
        peer.ready = await peer.notification("room.ready")
        return peer

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        self.reader.cancel()

    @property
    def id(self) -> str:
        return str(self.ready["participant"]["id"])

    @property
    def closed(self) -> bool:
        return self.reader.done()

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def expect(self, predicate: Any, timeout: float = 5) -> dict[str, Any]:
        """Takes the first message received so far or later that satisfies predicate."""

        def take() -> dict[str, Any] | None:
            for index, message in enumerate(self.inbox):
                if predicate(message):
                    return self.inbox.pop(index)
            return None

        async def wait() -> dict[str, Any]:
            async with self.arrived:
                while (found := take()) is None:
                    if self.reader.done():
                        raise ConnectionError(f"connection closed ({self.ws.close_code}); inbox: {self.inbox[-5:]}")
                    await self.arrived.wait()
                return found

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no matching message in {timeout}s; inbox: {self.inbox[-5:]}") from None

    async def notification(self, method: str, timeout: float = 5) -> dict[str, Any]:
        return (await self.expect(lambda m: m.get("method") == method and "id" not in m, timeout))["params"]

    async def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 5) -> dict[str, Any]:
        """Sends a request and returns the whole response (with `result` or `error`)."""
        # unlike any id a test (or the fuzzer) writes by hand, so answers never get mixed up
        request_id = f"peer-{next(self.ids)}-{uuid.uuid4().hex[:8]}"
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        return await self.expect(lambda m: m.get("id") == request_id and "method" not in m, timeout)

    async def result(self, method: str, params: dict[str, Any] | None = None, timeout: float = 5) -> Any:
        response = await self.request(method, params, timeout)
        assert "result" in response, response
        return response["result"]

    async def invoke(
        self, toolkit: str, tool: str, arguments: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        params = {"toolkit": toolkit, "tool": tool, "arguments": arguments or {}, **extra}
        return await self.request("tools.invoke", params, timeout=extra.get("timeout", 5) + 5)

    async def register(self, name: str, tools: list[dict[str, Any]], public: bool = True) -> dict[str, Any]:
        return await self.request("toolkits.register", {"name": name, "public": public, "tools": tools})

    async def next_call(self, timeout: float = 5) -> dict[str, Any]:
        return await self.expect(lambda m: m.get("method") == "tools.call", timeout)

    async def answer(self, call: dict[str, Any], result: Any) -> None:
        await self.send({"jsonrpc": "2.0", "id": call["id"], "result": result})


ADD_TOOL = {
    "name": "add",
    "description": "Add two numbers",
    "input_schema": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
    "output_schema": {"type": "number"},
}
