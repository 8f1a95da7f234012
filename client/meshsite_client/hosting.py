"""Answering the server's `tools.call` requests for toolkits this client registered."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import to_jsonable_python

from .context import ToolContext, parse_deadline
from .link import Link
from .rpc import error_response
from .tools import Tool, Toolkit
from .tracing import current_traceparent, is_valid_traceparent

if TYPE_CHECKING:
    from .client import RoomClient

log = logging.getLogger("meshsite_client.hosting")


def _validation_errors(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    # Same shape as the server's -32003 errors: a JSON Pointer path and a message.
    return [{"path": "".join(f"/{part}" for part in err["loc"]), "message": err["msg"]} for err in exc.errors()]


class ToolHost:
    def __init__(self, client: RoomClient) -> None:
        self._client = client
        # Registered through this client: the source of truth for re-registration on reconnect.
        self.toolkits: dict[str, Toolkit] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> list[str]:
        return list(self._tasks)

    def handle_call(self, link: Link, request_id: Any, params: dict[str, Any]) -> None:
        raw_call_id = params.get("call_id")
        call_id = raw_call_id if isinstance(raw_call_id, str) and raw_call_id else str(request_id)
        toolkit_name = params.get("toolkit")
        tool_name = params.get("tool")
        toolkit = self.toolkits.get(toolkit_name) if isinstance(toolkit_name, str) else None
        tool = toolkit.get(tool_name) if toolkit is not None and isinstance(tool_name, str) else None
        if toolkit is None or tool is None:
            what = f"toolkit {toolkit_name!r}" if toolkit is None else f"tool {toolkit_name}.{tool_name}"
            self._reply_error(link, request_id, -32002, f"{what} is not hosted by this participant", "not_found")
            return
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            self._reply_error(link, request_id, -32602, "arguments must be an object", "invalid_params")
            return
        meta = params.get("_meta")
        traceparent = meta.get("traceparent") if isinstance(meta, dict) else None
        caller = params.get("caller")
        on_behalf_of = params.get("on_behalf_of")

        async def send_progress(value: Any) -> None:
            await link.send_quietly(
                {
                    "jsonrpc": "2.0",
                    "method": "tools.progress",
                    "params": {"call_id": call_id, "progress": to_jsonable_python(value)},
                }
            )

        ctx = ToolContext(
            call_id=call_id,
            toolkit=toolkit.name,
            tool=tool.name,
            caller=caller if isinstance(caller, dict) else {},
            on_behalf_of=on_behalf_of if isinstance(on_behalf_of, dict) else None,
            deadline=parse_deadline(params.get("deadline")),
            room=self._client,
            traceparent=traceparent if is_valid_traceparent(traceparent) else None,
            _send_progress=send_progress,
            _loop=asyncio.get_running_loop(),
        )
        if call_id in self._tasks:
            log.warning("tools.call %s arrived twice; answering the newer one", call_id)
            self._tasks[call_id].cancel()
        task = asyncio.create_task(self._run(link, request_id, tool, arguments, ctx))
        self._tasks[call_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(call_id) is done:
                del self._tasks[call_id]

        task.add_done_callback(forget)

    async def _run(self, link: Link, request_id: Any, tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> None:
        # Tasks copy the context at creation, so this only affects this handler (and whatever
        # it calls): ctx.room.invoke picks the traceparent up from here.
        current_traceparent.set(ctx.traceparent)
        try:
            args, kwargs = tool.signature.bind(arguments, ctx)
        except pydantic.ValidationError as exc:
            # The server validated against the same schema, so this means coercion-level
            # disagreement; still the caller's arguments, not a tool failure.
            errors = {"type": "invalid_arguments", "errors": _validation_errors(exc)}
            await link.send_quietly(
                error_response(request_id, -32003, "arguments do not match the input schema", errors)
            )
            return
        try:
            output = await tool.execute(args, kwargs)
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": output}
            try:
                await link.send(answer)
                return
            except (TypeError, ValueError) as exc:
                failure = {"type": "tool_failed", "exception": type(exc).__name__}
                answer = error_response(request_id, -32009, f"the tool's output is not JSON: {exc}", failure)
        except asyncio.CancelledError:
            # tools.cancelled (or the client closing): the server drops any later answer anyway.
            raise
        except Exception as exc:  # any handler failure becomes a tool_failed answer
            log.info("tool %s.%s failed: %r", ctx.toolkit, ctx.tool, exc)
            failure = {"type": "tool_failed", "exception": type(exc).__name__}
            answer = error_response(request_id, -32009, str(exc) or type(exc).__name__, failure)
        await link.send_quietly(answer)

    def cancel(self, call_id: Any) -> bool:
        task = self._tasks.pop(call_id, None) if isinstance(call_id, str) else None
        if task is None:
            return False
        task.cancel()
        return True

    def cancel_all(self) -> None:
        current = asyncio.current_task()
        for call_id, task in list(self._tasks.items()):
            if task is current:
                # A handler that closes the client must not cancel itself halfway through close().
                continue
            self._tasks.pop(call_id, None)
            task.cancel()
        for task in list(self._background):
            task.cancel()

    def _reply_error(self, link: Link, request_id: Any, code: int, message: str, type_name: str) -> None:
        answer = error_response(request_id, code, message, {"type": type_name})
        task = asyncio.ensure_future(link.send_quietly(answer))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
