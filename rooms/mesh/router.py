"""Routes `tools.invoke` to the tool's host and the host's answer back to the caller.

Every call is a `PendingCall` on the caller's node until it ends in exactly one way: the host's
answer, a typed error (host gone, its node lost, invalid output), the caller's cancel, or the
deadline timer. The host's node keeps a `HostedCall` so the answer, progress and a host that leaves
reach the caller's node, wherever it is. Nothing here touches the database: ledger rows are
appended to an in-memory buffer flushed in batches.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from meshsite_client.protocol import encode_frame, utf8_size

from meshsite.errors import ErrorCode, MeshError, invalid_params, not_found, permission_denied
from meshsite.limits import LIMITS
from observability.models import ToolCall
from observability.pricing import reported_cost
from toolkits.base import BuiltinToolkit, CallContext
from toolkits.invocation import InvokeRequest
from toolkits.registry import get_builtin
from toolkits.schema import ToolSpec

from ..selectors import find_hosted_toolkit, find_present_participant
from .calls import HostedCall, Origin, PendingCall, call_row, error_status, new_call_id, refusal_row, too_large
from .frames import answer_frame, cancelled_frame, progress_frame, tools_call_frame
from .messages import AnswerMessage, CallMessage, CancelMessage, Kind, ProgressMessage
from .session import Session
from .state import HostedEntry, RoomState
from .trace import Span, child_span

if TYPE_CHECKING:
    from .node import Node

logger = logging.getLogger(__name__)


class Router:
    def __init__(self, node: "Node") -> None:
        self.node = node
        self.pending: dict[str, PendingCall] = {}
        self.hosted: dict[str, HostedCall] = {}
        self.ending: set[asyncio.Task[None]] = set()

    # --- the caller's side -------------------------------------------------------------------

    async def invoke(self, session: Session, request_id: Any, params: dict[str, Any], size: int) -> None:
        """Starts a call; its response is sent to the caller when the call ends."""
        request = InvokeRequest.parse(params)
        session.grants.check_invoke(request.toolkit, request.tool)
        handle = request.handle or new_call_id()
        if handle in session.calls:
            raise invalid_params(f"call_id {handle!r} is already in use by a pending call")
        acting_for = request.on_behalf_of_id
        on_behalf_of = None  # a coroutine only when the caller acts for someone else
        if acting_for is not None and acting_for != session.participant_id:
            on_behalf_of = await self._on_behalf_of(session, acting_for)
        await self._start(session, request, Origin(handle, request_id, None), on_behalf_of, child_span(params), size)

    async def call(
        self,
        session: Session,
        request: InvokeRequest,
        on_behalf_of: dict[str, Any] | None,
        traceparent: str | None,
        *,
        authorised: bool = False,
        on_progress: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Any:
        """A call made by the server for `session` (a built-in toolkit such as `agents.ask`), on the
        same path as `tools.invoke`: grants, validation, deadline, ledger. Returns the output or
        raises MeshError. `on_behalf_of` must already be authorised by the caller, and so must the
        call itself when `authorised` (the built-in checked its own, narrower grant). The host's
        progress goes to `on_progress`."""
        if not authorised:
            session.grants.check_invoke(request.toolkit, request.tool)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        span = child_span({"_meta": {"traceparent": traceparent}})
        size = utf8_size(encode_frame(request.arguments))
        call = await self._start(session, request, Origin(None, None, future), on_behalf_of, span, size)
        if call is not None:
            call.on_progress = on_progress
        try:
            return await future
        except asyncio.CancelledError:
            if call is not None and call.call_id in self.pending:
                await self._end(call, error=MeshError(ErrorCode.CANCELLED, "the outer call ended"))
                await self._stop_host_work(call, "caller left")
            raise

    async def _start(
        self,
        session: Session,
        request: InvokeRequest,
        origin: "Origin",
        on_behalf_of: dict[str, Any] | None,
        span: Span,
        size: int,
    ) -> PendingCall | None:
        builtin = get_builtin(request.toolkit)
        if builtin is not None:
            spec = builtin.tools.get(request.tool)
            if spec is None:
                raise not_found(f"the {request.toolkit} toolkit has no tool {request.tool!r}")
            if not spec.arguments_certainly_valid(request.arguments):
                await spec.check_arguments(request.arguments)
            call = self._open(session, request, origin, spec, None, "", on_behalf_of, span, size)
            call.task = asyncio.create_task(self._run_builtin(call, builtin, request.arguments))
            return call
        state = self.node.rooms[session.room_id]
        entry = await self._find_toolkit(state, request.toolkit, request.participant_id)
        spec = entry.tools.get(request.tool)
        if spec is None:
            raise not_found(f"toolkit {request.toolkit!r} has no tool {request.tool!r}")
        if not spec.arguments_certainly_valid(request.arguments):  # a coroutine only when in doubt
            await spec.check_arguments(request.arguments)
        host_node = state.nodes.get(entry.host_id)
        if host_node is None:
            raise MeshError(ErrorCode.PARTICIPANT_GONE, "the toolkit's host has left the room")
        call = self._open(session, request, origin, spec, entry, host_node, on_behalf_of, span, size)
        frame = tools_call_frame(call, request.arguments)
        if utf8_size(frame) > LIMITS.max_frame_bytes:
            await self._end(call, error=too_large("the tools.call frame for these arguments", utf8_size(frame)))
            return call
        delivery: CallMessage = {
            "k": Kind.CALL,
            "call_id": call.call_id,
            "host_id": entry.host_id,
            "frame": frame,
            "reply": self.node.id,
            "caller_id": session.participant_id,
            "on_behalf_of_id": on_behalf_of["id"] if on_behalf_of else None,
        }
        if host_node == self.node.id:
            await self.deliver_call(delivery)
        else:
            # Not awaited: the caller's next frame need not wait for Redis, and the calls of one
            # loop tick leave in one PUBLISH. A node that is not listening fails the call then.
            self.node.bus.post(host_node, delivery).add_done_callback(partial(self._unreachable, call))
        return call

    def _unreachable(self, call: PendingCall, delivered: "asyncio.Future[bool]") -> None:
        if not delivered.result() and call.call_id in self.pending:
            error = MeshError(ErrorCode.UNAVAILABLE, "the toolkit's host cannot be reached")
            task = asyncio.create_task(self._end(call, error=error))
            self.ending.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self.ending.discard)

    def _open(
        self,
        session: Session,
        request: InvokeRequest,
        origin: "Origin",
        spec: ToolSpec,
        entry: HostedEntry | None,
        host_node: str,
        on_behalf_of: dict[str, Any] | None,
        span: Span,
        size: int,
    ) -> PendingCall:
        call = PendingCall(
            call_id=new_call_id(),
            handle=origin.handle,
            request_id=origin.request_id,
            future=origin.future,
            caller=session,
            toolkit=request.toolkit,
            tool=request.tool,
            spec=spec,
            host_id=entry.host_id if entry else "",
            host_identity=str(entry.record.get("participant_identity") or "") if entry else "",
            host_node=host_node,
            on_behalf_of=on_behalf_of,
            span=span,
            timeout=request.timeout,
            started=time.time(),
            t0=time.perf_counter(),
            request_bytes=size,
        )
        self.pending[call.call_id] = call
        if origin.handle is not None:
            session.calls[origin.handle] = call.call_id
        call.timer = asyncio.get_running_loop().call_later(
            request.timeout, lambda: asyncio.ensure_future(self._expire(call.call_id))
        )
        return call

    async def _find_toolkit(self, state: RoomState, name: str, host_id: str | None) -> HostedEntry:
        entry = state.find_toolkit(name, host_id)
        if entry is None:
            # The registration's event may not have reached this node yet: ask the database.
            found = await sync_to_async(find_hosted_toolkit)(state.room_id, name, host_id)
            if found is not None:
                toolkit, host, node = found
                if host["id"] not in state.participants:
                    state.add_participant(host, node)
                entry = state.add_toolkit(toolkit)
        if entry is not None:
            return entry
        if host_id is None and any(key[1] == name for key in state.hosted):
            raise permission_denied(f"toolkit {name!r} is private: name its host with participant_id")
        if host_id is not None and host_id not in state.participants:
            raise not_found(f"participant {host_id!r} is not in this room")
        raise not_found(f"no toolkit named {name!r} in this room")

    async def _on_behalf_of(self, session: Session, participant_id: str) -> dict[str, Any]:
        """Another participant `session` acts for (on_behalf_of_id), once it may."""
        acting_for_them = any(
            (hosted := self.hosted.get(call_id)) is not None
            and participant_id in (hosted.caller_id, hosted.on_behalf_of_id)
            for call_id in session.hosted
        )
        if not acting_for_them and not session.grants.flag("impersonate"):
            raise permission_denied(
                "on_behalf_of_id needs the impersonate grant or a call in flight from that participant"
            )
        record = self.node.rooms[session.room_id].participants.get(participant_id)
        if record is None:
            found = await sync_to_async(find_present_participant)(session.room_id, participant_id)
            if found is None:
                raise not_found(f"participant {participant_id!r} is not in this room")
            record = found[0]
        return {key: record[key] for key in ("id", "identity", "role", "name")}

    async def _run_builtin(self, call: PendingCall, toolkit: BuiltinToolkit, arguments: dict[str, Any]) -> None:
        ctx = CallContext(
            call.caller,
            call.on_behalf_of,
            call.call_id,
            call.span.traceparent,
            call.started + call.timeout,
            mesh=self.node,
            report_progress=partial(self.report_progress, call.call_id),
        )
        try:
            output = await toolkit.run_tool(call.tool, ctx, arguments)
        except MeshError as error:
            await self._end(call, error=error)
        except Exception:
            logger.exception("built-in %s.%s failed", call.toolkit, call.tool)
            await self._end(call, error=MeshError(ErrorCode.INTERNAL_ERROR, f"{call.toolkit}.{call.tool} failed"))
        else:
            await self._end(call, output=output)

    async def cancel(self, session: Session, params: dict[str, Any]) -> dict[str, Any]:
        handle = params.get("call_id")
        if not isinstance(handle, str):
            raise invalid_params("call_id must be a string")
        call = self.pending.get(session.calls.get(handle, ""))
        if call is None:
            raise not_found(f"no pending call {handle!r}")
        await self._end(call, error=MeshError(ErrorCode.CANCELLED, "the call was cancelled by the caller"))
        await self._stop_host_work(call, "cancelled")
        return {"cancelled": True}

    async def _expire(self, call_id: str) -> None:
        call = self.pending.get(call_id)
        if call is None:
            return
        await self._end(
            call,
            error=MeshError(ErrorCode.TIMEOUT, f"{call.toolkit}.{call.tool} did not answer within {call.timeout:g}s"),
        )
        await self._stop_host_work(call, "timeout")

    async def _stop_host_work(self, call: PendingCall, reason: str) -> None:
        if call.task is not None:
            call.task.cancel()
            return
        message: CancelMessage = {"k": Kind.CANCEL, "call_id": call.call_id, "reason": reason}
        if call.host_node == self.node.id:
            await self.cancel_hosted(message)
        else:
            self.node.bus.post(call.host_node, message)

    async def on_answer(self, message: AnswerMessage) -> None:
        """The host's answer or a server-side failure, arriving on the caller's node."""
        call = self.pending.get(message["call_id"])
        if call is None or message.get("host_id", call.host_id) != call.host_id:
            return  # late (after a timeout or cancel) or from a participant the call never went to
        if "code" in message:
            await self._end(call, error=MeshError(ErrorCode(message["code"]), message["message"]))
        elif "error" in message:
            host_error = message["error"]
            text = host_error.get("message") if isinstance(host_error, dict) else None
            text = text if isinstance(text, str) else "the host answered with an error"
            await self._end(
                call,
                error=MeshError(
                    ErrorCode.TOOL_FAILED,
                    f"{call.toolkit}.{call.tool} failed: {text}",
                    message=text,
                    host_error=host_error,
                ),
            )
        else:
            # result._meta is the host's word to the server (its cost), not output
            output, call.cost, bad_cost = reported_cost(message.get("result"))
            errors = [] if call.spec.output_certainly_valid(output) else await call.spec.output_errors(output)
            if bad_cost:
                await self._end(call, error=MeshError(ErrorCode.TOOL_FAILED, bad_cost))
            elif errors:
                error = MeshError(
                    ErrorCode.TOOL_FAILED, "the tool's output does not match its output_schema", errors=errors
                )
                await self._end(call, error=error)
            else:
                await self._end(call, output=output)

    async def on_progress(self, message: ProgressMessage) -> None:
        call = self.pending.get(message["call_id"])
        if call is None or message.get("host_id") != call.host_id:
            return
        if call.on_progress is not None:
            try:
                await call.on_progress(message.get("progress"))
            except Exception:
                logger.exception("relaying progress of %s.%s failed", call.toolkit, call.tool)
        elif call.handle is not None:
            await self.node.send(call.caller, progress_frame(call.handle, message.get("progress")))

    async def report_progress(self, call_id: str, progress: Any) -> None:
        """Progress of a built-in call (or one it relays) for whoever waits for it."""
        await self.on_progress({"k": Kind.PROGRESS, "call_id": call_id, "host_id": "", "progress": progress})

    async def _end(self, call: PendingCall, *, output: Any = None, error: MeshError | None = None) -> None:
        """Ends a call exactly once: answers the caller (if still here) and writes the ledger row."""
        if self.pending.pop(call.call_id, None) is None:
            return
        caller = call.caller
        if call.handle is not None:
            caller.calls.pop(call.handle, None)
        if call.timer is not None:
            call.timer.cancel()
        response_bytes = 0
        status = error_status(error)
        if call.future is not None:
            if call.future.done():
                status = ToolCall.Status.ABANDONED
            elif error is None:
                call.future.set_result(output)
                response_bytes = utf8_size(encode_frame(output))
            else:
                call.future.set_exception(error)
        elif caller.closed:
            status = ToolCall.Status.ABANDONED
        else:
            frame, error = answer_frame(call, output, error)
            status = error_status(error)
            response_bytes = utf8_size(frame)
            await self.node.send(caller, frame)
        self.node.ledger.record(call_row(call, self.node.id, status, error, response_bytes))

    def record_refusal(self, session: Session, params: Any, error: MeshError, size: int = 0) -> None:
        """A ledger row for a call refused before routing (grants, arguments, rate, size), so an
        operator sees attacks and mistakes, not only the calls that ran."""
        self.node.ledger.record(refusal_row(session, params, error, size, self.node.id))

    # --- the host's side ---------------------------------------------------------------------

    def is_hosting(self, session: Session, call_id: Any) -> bool:
        return isinstance(call_id, str) and call_id in session.hosted

    async def deliver_call(self, message: CallMessage) -> None:
        host = self.node.sessions.get(message["host_id"])
        if host is None or host.closed:
            await self._reply(message["reply"], self._gone(message["call_id"], "the toolkit's host has left"))
            return
        call_id = message["call_id"]
        self.hosted[call_id] = HostedCall(
            call_id, host.participant_id, message["reply"], message["caller_id"], message.get("on_behalf_of_id")
        )
        host.hosted.add(call_id)
        await self.node.send(host, message["frame"])

    async def on_host_response(self, host: Session, response: dict[str, Any]) -> None:
        call_id = response.get("id")
        hosted = self.hosted.get(call_id) if isinstance(call_id, str) else None
        if hosted is None or hosted.host_id != host.participant_id:
            return  # an answer to a finished or cancelled call, or to a call it never got
        del self.hosted[hosted.call_id]
        host.hosted.discard(hosted.call_id)
        answer: AnswerMessage = {"k": Kind.ANSWER, "call_id": hosted.call_id, "host_id": host.participant_id}
        if "error" in response:
            answer["error"] = response["error"]
        else:
            answer["result"] = response.get("result")
        await self._reply(hosted.reply_node, answer)

    async def on_host_progress(self, host: Session, params: dict[str, Any]) -> None:
        call_id = params.get("call_id")
        hosted = self.hosted.get(call_id) if isinstance(call_id, str) else None
        if hosted is None or hosted.host_id != host.participant_id:
            return
        message: ProgressMessage = {
            "k": Kind.PROGRESS,
            "call_id": hosted.call_id,
            "host_id": host.participant_id,
            "progress": params.get("progress"),
        }
        if hosted.reply_node == self.node.id:
            await self.on_progress(message)
        else:
            self.node.bus.post(hosted.reply_node, message)

    async def cancel_hosted(self, message: CancelMessage) -> None:
        hosted = self.hosted.pop(message["call_id"], None)
        if hosted is None:
            return
        host = self.node.sessions.get(hosted.host_id)
        if host is not None:
            host.hosted.discard(hosted.call_id)
            frame = cancelled_frame(hosted.call_id, message.get("reason", "cancelled"))
            await self.node.send(host, frame)

    async def _reply(self, node_id: str, message: AnswerMessage) -> None:
        if node_id == self.node.id:
            await self.on_answer(message)
        else:
            self.node.bus.post(node_id, message)  # not awaited: a lost caller node needs no answer

    @staticmethod
    def _gone(call_id: str, text: str) -> AnswerMessage:
        return {"k": Kind.ANSWER, "call_id": call_id, "code": int(ErrorCode.PARTICIPANT_GONE), "message": text}

    # --- sessions and nodes that go away -----------------------------------------------------

    async def session_gone(self, session: Session) -> None:
        """Fails the calls a leaving session hosts and abandons the ones it made."""
        for call_id in list(session.calls.values()):
            call = self.pending.get(call_id)
            if call is not None:
                await self._end(call)
                await self._stop_host_work(call, "caller left")
        for call_id in list(session.hosted):
            hosted = self.hosted.pop(call_id, None)
            if hosted is not None:
                await self._reply(
                    hosted.reply_node,
                    self._gone(call_id, f"the host {session.identity!r} left before answering"),
                )
        session.hosted.clear()

    async def nodes_lost(self, lost: set[str]) -> None:
        for call in [c for c in self.pending.values() if c.host_node in lost]:
            await self._end(call, error=MeshError(ErrorCode.PARTICIPANT_GONE, "the host's server node was lost"))
        for hosted in [h for h in self.hosted.values() if h.reply_node in lost]:
            await self.cancel_hosted({"k": Kind.CANCEL, "call_id": hosted.call_id, "reason": "caller left"})
