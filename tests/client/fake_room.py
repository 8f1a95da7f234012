"""A scripted in-process stand-in for the Meshsite server, speaking just enough of the protocol.

Tests see every frame the client sends (`next_frame`) and answer or push frames themselves;
`toolkits.register`, `toolkits.unregister` and `ping` are answered automatically.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from http import HTTPStatus
from typing import Any

from meshsite_client import ToolContext, Toolkit, tool
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

BUILTINS = [
    {
        "name": "messaging",
        "description": "Messages",
        "public": True,
        "participant_id": None,
        "participant_identity": None,
        "tools": [{"name": "send", "description": "", "input_schema": {"type": "object"}, "output_schema": None}],
    }
]


def participant(pid: str, identity: str = "alice") -> dict[str, Any]:
    return {
        "id": pid,
        "identity": identity,
        "role": "user",
        "name": identity.title(),
        "attributes": {},
        "joined_at": "2026-11-24T10:00:00.000000Z",
    }


class Conn:
    def __init__(self, ws: ServerConnection, pid: str) -> None:
        self.ws = ws
        self.pid = pid

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps({"jsonrpc": "2.0", **message}))

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.send({"method": method, "params": params})

    async def answer(self, frame: dict[str, Any], result: Any) -> None:
        await self.send({"id": frame["id"], "result": result})

    async def fail(self, frame: dict[str, Any], code: int, message: str, data: dict[str, Any]) -> None:
        await self.send({"id": frame["id"], "error": {"code": code, "message": message, "data": data}})

    async def close(self, code: int, reason: str, *, notice: bool = True) -> None:
        if notice:
            await self.notify("connection.closing", {"code": code, "reason": reason})
        await self.ws.close(code, reason)


class FakeRoom:
    def __init__(self) -> None:
        self.frames: asyncio.Queue[tuple[Conn, dict[str, Any]]] = asyncio.Queue()
        self.connections: list[Conn] = []
        self.authorizations: list[str | None] = []
        self.refuse_status: int | None = None
        self.close_on_connect: tuple[int, str] | None = None
        self.others: list[dict[str, Any]] = [participant("p_bob", "bob")]
        self.registered: list[tuple[str, dict[str, Any]]] = []
        # (toolkit, tool) -> output, answered automatically to tools.invoke
        self.outputs: dict[tuple[str, str], Any] = {}
        self._server: Server | None = None
        self.connected = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/rooms/lobby/ws"

    async def __aenter__(self) -> FakeRoom:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._gate)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _gate(self, connection: ServerConnection, request: Request) -> Response | None:
        self.authorizations.append(request.headers.get("Authorization"))
        if self.refuse_status is not None:
            status = HTTPStatus(self.refuse_status)
            return Response(status.value, status.phrase, Headers(), b"")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if self.close_on_connect is not None:
            code, reason = self.close_on_connect
            await ws.send(
                json.dumps(
                    {"jsonrpc": "2.0", "method": "connection.closing", "params": {"code": code, "reason": reason}}
                )
            )
            await ws.close(code, reason)
            return
        conn = Conn(ws, f"p_{len(self.connections) + 1}")
        self.connections.append(conn)
        me = participant(conn.pid)
        await conn.notify(
            "room.ready",
            {
                "protocol": 1,
                "server": "meshsite/0.1.0",
                "room": {"name": "lobby", "project": "demo"},
                "participant": me,
                "participants": [me, *self.others],
                "toolkits": BUILTINS,
                "limits": {"max_frame_bytes": 1048576, "default_timeout": 60, "max_timeout": 600},
                "token_expires_at": "2026-11-24T11:00:00Z",
            },
        )
        self.connected.set()
        with contextlib.suppress(ConnectionClosed):  # the tests close connections on purpose
            await self._serve(conn)

    async def _serve(self, conn: Conn) -> None:
        async for raw in conn.ws:
            frame = json.loads(raw)
            method = frame.get("method")
            params = frame.get("params") or {}
            if method == "tools.invoke" and (params["toolkit"], params["tool"]) in self.outputs:
                output = self.outputs[params["toolkit"], params["tool"]]
                await conn.answer(frame, {"call_id": params["call_id"], "output": output})
            elif method == "toolkits.register":
                self.registered.append((conn.pid, frame["params"]))
                toolkit = {**frame["params"], "participant_id": conn.pid, "participant_identity": "alice"}
                await conn.answer(frame, {"toolkit": toolkit})
            elif method == "toolkits.unregister":
                await conn.answer(frame, {"unregistered": True})
            elif method == "ping":
                await conn.answer(frame, {"pong": True, "time": "2026-11-24T10:00:00.000000Z"})
            await self.frames.put((conn, frame))

    async def next_frame(self, method: str | None = None, timeout: float = 5.0) -> tuple[Conn, dict[str, Any]]:
        """The next frame from the client (optionally the next one calling `method`)."""
        while True:
            conn, frame = await asyncio.wait_for(self.frames.get(), timeout)
            if method is None or frame.get("method") == method:
                return conn, frame

    async def next_answer(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next response the client sent (to a server-sent request such as tools.call)."""
        while True:
            _, frame = await asyncio.wait_for(self.frames.get(), timeout)
            if "method" not in frame:
                return frame

    async def wait_connections(self, count: int, timeout: float = 5.0) -> Conn:
        async def poll() -> Conn:
            while len(self.connections) < count:
                await asyncio.sleep(0.01)
            return self.connections[count - 1]

        return await asyncio.wait_for(poll(), timeout)


# A sample toolkit and the tools.call frame the server would send for it.

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-a3ce929d0e0e4736-01"


def tools_call(call_id: str, toolkit: str, tool_name: str, arguments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    params = {
        "call_id": call_id,
        "toolkit": toolkit,
        "tool": tool_name,
        "arguments": arguments,
        "caller": {"id": "p_bob", "identity": "bob", "role": "agent", "name": "Bob"},
        "on_behalf_of": None,
        "deadline": "2099-01-01T00:00:00.000000Z",
        "_meta": {"traceparent": TRACEPARENT},
        **extra,
    }
    return {"id": call_id, "method": "tools.call", "params": params}


@tool
async def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
async def slow(ctx: ToolContext, seconds: float = 30) -> str:
    await ctx.progress({"percent": 10})
    await asyncio.sleep(seconds)
    return "done"


@tool
def explode(message: str) -> None:
    raise LookupError(message)


CALC = Toolkit("calc", [add, slow, explode], description="Arithmetic")
