"""`ChatBot`: an agent that holds conversations in the room's threads.

A message posted to a thread by a person starts a **turn**: the bot reads the thread, asks the
model (any OpenAI-compatible server, see `meshsite_client.llm`), streams the answer to the
thread's readers as `threads.turn` events (`started`, `text`, `tool_call_started`,
`tool_call_ended`, `ended`, `error`), runs the tools the model asks for through the room (on
behalf of the person who asked), and posts the final message to the thread with its tool-call
records. Every model call is recorded with `usage.record`, in the turn's trace.

Extend it three ways (docs/agents.md): `rules` (system prompts), `tool_toolkits` (the room's
toolkits the model may use), and overriding methods (`turn_prompt`, `select_tools`,
`on_turn_finished`, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, MeshError, RpcError
from ..llm import (
    ChatResult,
    LLMConfig,
    LLMError,
    NoLLMConfigured,
    TextDelta,
    ToolCallEnded,
    ToolCallStarted,
    Usage,
    stream_chat,
    trim_to_window,
)
from ..llm.stream import warm_up
from ..llm.tokens import token_counter
from ..records import ToolkitInfo
from ..tools import Toolkit, tool
from ..tracing import current_traceparent, new_traceparent
from .single_room import SingleRoomAgent

if TYPE_CHECKING:
    from ..client import RoomClient

log = logging.getLogger("meshsite_client.agents.chatbot")

BUSY_POLICIES = ("queue", "interrupt")
# What one thread message may hold (threads/parts.py)
MAX_TEXT = 100_000 - 100
MAX_PARTS = 64
# Text deltas are sent to readers at most this often (seconds); the rest is batched.
STREAM_INTERVAL = 0.05
# Seconds a "no budget applies" answer is trusted without a `usage.budgets_changed` notification.
NO_BUDGET_RECHECK = 60.0


class BudgetRefused(Exception):
    """A budget does not allow the turn's next model call; the message says why."""


@dataclass
class Turn:
    thread_id: str
    turn_id: str
    asker: dict[str, Any]  # the message author that started it
    traceparent: str
    # the seq of the thread message the turn answers (its answer is posted with `reply_to`)
    reply_to: int | None = None
    text: str = ""
    parts: list[dict[str, Any]] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    # streamed events wait here for the turn's sender, so the turn never waits for them
    outbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    # The sender sends one event after the server's answer to the one before (which keeps them in
    # order). `on_wire` is clear while it holds an event it could send now and has not sent yet:
    # the turn waits on it where an event should leave before the turn's next CPU-bound step.
    on_wire: asyncio.Event = field(default_factory=asyncio.Event)
    sender_idle: bool = True  # the sender waits for the next event (not for an answer)
    # the model's function names offered this turn → (toolkit, tool, host of a private toolkit);
    # per turn, since turns in several threads run at once, each offering its own asker's `ui`
    tools: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    # called with each piece of the answer's text as the model streams it (the VoiceBot speaks it)
    on_text: Callable[[str], None] | None = None


class ChatBot(SingleRoomAgent):
    """Answers people in the room's threads; see the module docstring."""

    kind = "chatbot"
    model: str = "gpt-4o-mini"
    api_key: str | None = None
    base_url: str | None = None
    context_window: int | None = None
    # Room toolkits the model may use: names or patterns; the asker's own private `ui` toolkit is
    # offered too when `offer_ui` is set.
    tool_toolkits: list[str] = []
    # Toolkits (names or patterns) a thread may switch on for itself with its own `toolkits`
    # (`threads.create` / `threads.configure`): a thread chooses among these, never beyond them.
    thread_toolkits: list[str] = []
    offer_ui: bool = True
    # `toolkit.tool` patterns that need a person's approval before they run
    approvals: list[str] = []
    approval_timeout: float = 120.0
    busy_policy: str = "queue"
    # call tools on behalf of the person who asked (the host sees them in `on_behalf_of`); needs a
    # token with the `impersonate` grant
    act_on_behalf: bool = False
    max_tool_rounds: int = 8
    tool_timeout: float = 60.0
    # which authors' messages start a turn (agents answering agents would loop)
    respond_to_roles: list[str] = ["user"]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.busy_policy not in BUSY_POLICIES:
            raise ValueError(f"busy_policy must be one of {', '.join(BUSY_POLICIES)}")
        self.tool_toolkits = list(self.tool_toolkits)
        self.thread_toolkits = list(self.thread_toolkits)
        self.approvals = list(self.approvals)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._current: dict[str, asyncio.Task[None]] = {}
        self._unsubscribe_messages: Any = None
        # threads this bot has read, kept current from notifications: seq -> message record
        self._threads: dict[str, dict[int, dict[str, Any]]] = {}
        # per thread, seq -> (the message record, its chat messages): see history()
        self._chat_forms: dict[str, dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
        # the toolkits each of those threads switches on (its record's `toolkits`)
        self._thread_toolkits: dict[str, list[str]] = {}
        self._unsubscribe_more: list[Any] = []
        # until then (loop time) no budget applies to this room: model calls skip `usage.reserve`
        self._no_budget_until = float("-inf")

    # -- configuration -------------------------------------------------------------------------

    def llm_config(self) -> LLMConfig:
        return LLMConfig(
            model=self.model,
            api_key=self.api_key,
            base_url=self.base_url,
            context_window=self.context_window,
            service=self.name,
        )

    def turn_prompt(self, turn: Turn) -> str:
        """The system message of a turn: `system_prompt()` (description and rules). Override to
        compute it per turn (the thread, the asker)."""
        return self.system_prompt() or "You are a helpful assistant in a shared room."

    def exposed_toolkits(self) -> list[Toolkit]:
        @tool
        async def interrupt(thread_id: str) -> dict[str, Any]:
            """Stop the turn running in this thread (its partial answer is kept)."""
            return {"interrupted": await self.interrupt(thread_id)}

        return [*super().exposed_toolkits(), Toolkit(self.name, [interrupt], description=self.description or "")]

    def agent_attributes(self) -> dict[str, Any]:
        attributes = super().agent_attributes()
        attributes["agent"] = {**attributes.get("agent", {}), "kind": self.kind, "model": self.model}
        return attributes

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, room: RoomClient, *, requires_timeout: float | None = None) -> None:
        # Listen from the moment the agent is in the room, not once its toolkits are registered:
        # a message posted while it starts would otherwise never start a turn.
        self._unsubscribe_messages = room.on("threads.message", self._on_message)
        try:
            await super().start(room, requires_timeout=requires_timeout)
        except BaseException:
            self._unsubscribe_messages()
            self._unsubscribe_messages = None
            raise

    async def on_start(self) -> None:
        self._unsubscribe_more = [
            self.room.on("threads.message_updated", self._on_message_updated),
            self.room.on("threads.updated", self._on_thread_updated),
            self.room.on("connection.restored", self._on_restored),
            self.room.on("usage.budgets_changed", self._budgets_changed),
        ]
        # Loading a tokenizer and creating the HTTP client block the loop once: do it now, not in a turn.
        config = self.llm_config()
        await asyncio.to_thread(token_counter, config.model)
        if config.is_configured:
            await warm_up(config)

    async def on_stop(self) -> None:
        if self._unsubscribe_messages is not None:
            self._unsubscribe_messages()
        for unsubscribe in self._unsubscribe_more:
            unsubscribe()
        for task in [*self._current.values(), *self._workers.values()]:
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)

    def _on_restored(self, _params: dict[str, Any]) -> None:
        # notifications may have been missed while disconnected: read threads and budgets afresh
        self._threads.clear()
        self._chat_forms.clear()
        self._thread_toolkits.clear()
        self._no_budget_until = float("-inf")

    def _budgets_changed(self, _params: dict[str, Any]) -> None:
        self._no_budget_until = float("-inf")

    def _remember(self, thread_id: str, message: dict[str, Any]) -> None:
        known = self._threads.get(thread_id)
        if known is not None and isinstance(message.get("seq"), int):
            known[message["seq"]] = message

    def _on_thread_updated(self, params: dict[str, Any]) -> None:
        thread = params.get("thread")
        if isinstance(thread, dict) and str(params.get("thread_id")) in self._thread_toolkits:
            self._thread_toolkits[str(params.get("thread_id"))] = _names(thread.get("toolkits"))

    def _on_message_updated(self, params: dict[str, Any]) -> None:
        message = params.get("message")
        if isinstance(message, dict):
            self._remember(str(params.get("thread_id")), message)

    def _on_message(self, params: dict[str, Any]) -> None:
        message = params.get("message")
        if not isinstance(message, dict):
            return
        self._remember(str(params.get("thread_id")), message)
        author = message.get("author") or {}
        if author.get("participant_id") == self.room.participant.id or author.get("role") not in self.respond_to_roles:
            return
        thread_id = str(params.get("thread_id"))
        if self.busy_policy == "interrupt" and thread_id in self._current:
            self._current[thread_id].cancel()
        queue = self._queues.setdefault(thread_id, asyncio.Queue())
        queue.put_nowait(message)  # a message during a turn waits for it: never lost
        if thread_id not in self._workers or self._workers[thread_id].done():
            self._workers[thread_id] = asyncio.create_task(self._work(thread_id), name=f"chatbot-{thread_id}")

    async def _work(self, thread_id: str) -> None:
        queue = self._queues[thread_id]
        while not queue.empty():
            message = queue.get_nowait()
            seq = message.get("seq")
            turn = Turn(
                thread_id,
                uuid.uuid4().hex,
                message["author"],
                new_traceparent(),
                reply_to=seq if isinstance(seq, int) else None,
            )
            task = asyncio.create_task(self._run_turn(turn))
            self._current[thread_id] = task
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
            finally:
                self._current.pop(thread_id, None)

    async def interrupt(self, thread_id: str) -> bool:
        task = self._current.get(thread_id)
        if task is None:
            return False
        task.cancel()
        return True

    # -- a turn --------------------------------------------------------------------------------

    async def run_turn(self, turn: Turn) -> None:
        """Runs one turn to its end (posted to the thread, usage recorded); cancelling it ends it
        as interrupted. For turns that do not start from a thread message (the VoiceBot's)."""
        await self._run_turn(turn)

    async def _run_turn(self, turn: Turn) -> None:
        token = current_traceparent.set(turn.traceparent)
        sender = asyncio.create_task(self._send_stream(turn))
        try:
            self._stream(turn, "started", {"asker": turn.asker})
            # `started` goes on the wire before the model request: its round trip to the server
            # then overlaps the model's, instead of holding back the first text event.
            await turn.on_wire.wait()
            status = "ok"
            try:
                await self.answer(turn)
            except asyncio.CancelledError:
                status = "interrupted"
                raise
            except NoLLMConfigured as exc:
                status = "error"
                turn.text = f"I can't answer yet: {exc}"
            except BudgetRefused as exc:
                status = "error"
                turn.text = (turn.text + "\n\n" if turn.text else "") + f"I can't answer: {exc}"
            except LLMError as exc:
                status = "error"
                turn.text = (turn.text + "\n\n" if turn.text else "") + f"(the model failed: {exc})"
            finally:
                await asyncio.shield(self._finish(turn, status, sender))
        finally:
            current_traceparent.reset(token)

    async def _send_stream(self, turn: Turn) -> None:
        """Sends the turn's streamed events in order, off the turn's own path."""
        try:
            while True:
                turn.sender_idle = True
                item = await turn.outbox.get()
                turn.sender_idle = False
                if item is None:
                    return
                try:
                    call = self.room.start_invoke("threads", "stream", item, traceparent=turn.traceparent)
                    await call  # on the wire
                    turn.on_wire.set()
                    await call.result()
                except RpcError:
                    log.warning("could not stream %s of turn %s", item["event"], turn.turn_id, exc_info=True)
        finally:
            turn.sender_idle = False
            turn.on_wire.set()  # a sender that ended must not hold its turn up

    async def _finish(self, turn: Turn, status: str, sender: asyncio.Task[None]) -> None:
        for part in turn.parts:
            if part.get("status") in ("running", "awaiting_approval"):  # cut short by an interruption
                part.update(status="cancelled", error="the turn was interrupted before the tool answered")
        text = turn.text if len(turn.text) <= MAX_TEXT else turn.text[:MAX_TEXT] + "… (cut: too long for one message)"
        # a thread message holds at most MAX_PARTS parts: keep the latest tool calls
        calls = turn.parts[-(MAX_PARTS - 1) :]
        parts = ([{"type": "text", "text": text}] if text else []) + calls
        if not parts:
            parts = [{"type": "text", "text": "(interrupted before answering)" if status == "interrupted" else ""}]
        try:
            answer: dict[str, Any] = {"thread_id": turn.thread_id, "parts": parts}
            if turn.reply_to is not None:
                answer["reply_to"] = turn.reply_to
            posted = await self.room.invoke("threads", "post", answer, traceparent=turn.traceparent)
            # the next turn may start before this message's own notification arrives
            self._remember(turn.thread_id, posted["message"])
            usage = {
                "input_tokens": sum(u.prompt_tokens for u in turn.usage),
                "output_tokens": sum(u.completion_tokens for u in turn.usage),
            }
            self._stream(turn, "ended", {"status": status, "usage": usage})
            await self.on_turn_finished(turn, status)
        except MeshError:
            log.exception("could not post the end of turn %s in thread %s", turn.turn_id, turn.thread_id)
        finally:
            turn.outbox.put_nowait(None)
            try:
                await asyncio.wait_for(sender, 10)
            except (TimeoutError, asyncio.CancelledError):
                sender.cancel()

    async def on_turn_finished(self, turn: Turn, status: str) -> None:
        """Called after a turn's message is posted; `status` is ok, error or interrupted."""

    async def answer(self, turn: Turn) -> None:
        """Runs the model and the tools it asks for until it answers (at most `max_tool_rounds`)."""
        config = self.llm_config()
        messages = [{"role": "system", "content": self.turn_prompt(turn)}, *await self.history(turn)]
        tools = await self.select_tools(turn)
        counter = token_counter(config.model)
        for _round in range(self.max_tool_rounds):
            if config.context_window:
                # A thread longer than the window loses its oldest turns, not the turn itself.
                reserve = config.reserve_tokens + counter.count_tools(tools)
                messages = trim_to_window(messages, config.context_window, counter, reserve=reserve).messages
            result = await self._complete(turn, config, messages, tools)
            if not result.tool_calls:
                return
            messages.append(result.to_message())
            outputs = await asyncio.gather(*(self._run_tool(turn, call) for call in result.tool_calls))
            for call, output in zip(result.tool_calls, outputs, strict=True):
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(output)})
        turn.text += "\n\n(stopped: too many tool calls in one turn)"

    async def _reserve(
        self, turn: Turn, config: LLMConfig, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> str | None:
        """Holds the model call's estimated cost against the budgets before anything is spent
        (`usage.reserve`); raises BudgetRefused when a budget says no."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._no_budget_until:
            return None
        counter = token_counter(config.model)
        options = config.options
        estimate = {
            "kind": "llm",
            "model": config.model,
            "input_tokens": counter.count_messages(messages) + counter.count_tools(tools),
            "output_tokens": int(options.get("max_completion_tokens") or options.get("max_tokens") or 1024),
            "only_if_budgeted": True,
        }
        try:
            held = await self.room.invoke("usage", "reserve", estimate, traceparent=turn.traceparent)
        except BudgetExceeded as exc:
            raise BudgetRefused(exc.message) from None
        except RpcError:
            # a server without budgets (or a token without the grant): nothing to hold against
            log.warning("could not reserve the cost of turn %s; going on without", turn.turn_id, exc_info=True)
            return None
        reservation_id = held.get("reservation_id")
        if reservation_id is None and not held.get("budgets"):
            # No budget applies: skip the round trip until `usage.budgets_changed` says otherwise
            # (or a reconnection, or a minute, in case that notification was missed).
            self._no_budget_until = loop.time() + NO_BUDGET_RECHECK
        if held.get("needs_approval") and reservation_id:
            await self._approve_spend(turn, str(reservation_id), held)
        return str(reservation_id) if reservation_id else None

    async def _approve_spend(self, turn: Turn, reservation_id: str, held: dict[str, Any]) -> None:
        """Past a soft budget an owner decides, not the asker: the server asks the owners present
        (`usage.request_approval`) and records who decided on the reservation. The decision is a
        `tool_call` part of the turn's message (`approved_by` / `refused_by`), like a tool's
        approval. Raises BudgetRefused unless approved (the server has released the reservation)."""
        call_id = f"budget-{reservation_id}"
        arguments = {"reservation_id": reservation_id, "amount": held.get("amount"), "currency": held.get("currency")}
        part: dict[str, Any] = {
            "type": "tool_call",
            "call_id": call_id,
            "toolkit": "usage",
            "tool": "request_approval",
            "arguments": arguments,
            "status": "awaiting_approval",
        }
        turn.parts.append(part)
        self._stream(
            turn,
            "tool_call_started",
            {"call_id": call_id, "toolkit": "usage", "tool": "request_approval", "arguments": arguments},
        )
        asker = turn.asker.get("name") or turn.asker.get("identity") or "someone"
        try:
            outcome = await self.room.invoke(
                "usage",
                "request_approval",
                {"reservation_id": reservation_id, "reason": f"to answer {asker}", "timeout": self.approval_timeout},
                timeout=self.approval_timeout + 15,
                traceparent=turn.traceparent,
            )
        except RpcError as exc:
            await self._release(turn, reservation_id)
            outcome = {"approved": False, "decided_by": None, "message": f"no owner could be asked ({exc})"}
        decided_by = (outcome.get("decided_by") or {}).get("identity")
        if outcome.get("approved"):
            part.update(status="ok", approved_by=decided_by, result=outcome)
            self._stream(turn, "tool_call_ended", {"call_id": call_id, "status": "ok"})
            return
        message = str(outcome.get("message") or "no owner approved it")
        part.update(status="refused", refused_by=decided_by, error=message)
        self._stream(turn, "tool_call_ended", {"call_id": call_id, "status": "refused"})
        raise BudgetRefused(f"the answer would go over the soft budget, and {message}")

    async def _release(self, turn: Turn, reservation_id: str) -> None:
        with contextlib.suppress(RpcError):
            await self.room.invoke("usage", "release", {"reservation_id": reservation_id}, traceparent=turn.traceparent)

    async def _complete(
        self, turn: Turn, config: LLMConfig, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> ChatResult:
        reservation_id = await self._reserve(turn, config, messages, tools)
        settled = False
        try:
            result = await self._stream_completion(turn, config, messages, tools, reservation_id)
            settled = result.usage is not None
            return result
        finally:
            if reservation_id is not None and not settled:
                await asyncio.shield(self._release(turn, reservation_id))

    async def _stream_completion(
        self,
        turn: Turn,
        config: LLMConfig,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        reservation_id: str | None,
    ) -> ChatResult:
        result = ChatResult()
        pending = ""
        last = float("-inf")  # the first delta goes out at once; later ones in batches
        async for event in stream_chat(config, messages, tools or None, traceparent=turn.traceparent):
            result.feed(event)
            if isinstance(event, TextDelta):
                turn.text += event.text
                if turn.on_text is not None:
                    turn.on_text(event.text)
                pending += event.text
                now = asyncio.get_running_loop().time()
                if now - last >= STREAM_INTERVAL:
                    self._stream(turn, "text", {"text": pending})
                    pending, last = "", now
                    # Chunks that came together are parsed without a pause: let this text leave
                    # first (the readers' first text waits on it).
                    await turn.on_wire.wait()
            elif isinstance(event, ToolCallStarted):
                self._stream(turn, "tool_call_started", {"call_id": event.id, "name": event.name})
            elif isinstance(event, Usage):
                turn.usage.append(event)
                await self._record_usage(turn, event, config, reservation_id)
        if pending:
            self._stream(turn, "text", {"text": pending})
        return result

    async def _record_usage(self, turn: Turn, usage: Usage, config: LLMConfig, reservation_id: str | None) -> None:
        arguments: dict[str, Any] = {
            "kind": "llm",
            "model": usage.model or config.model,
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "cached_tokens": min(usage.cached_tokens or 0, usage.prompt_tokens),
            "thread_id": turn.thread_id,
            "turn_id": turn.turn_id,
        }
        if reservation_id is not None:
            arguments["reservation_id"] = reservation_id
        try:
            await self.room.invoke("usage", "record", arguments, traceparent=turn.traceparent)
        except RpcError:
            log.exception("could not record usage of turn %s", turn.turn_id)

    def _stream(self, turn: Turn, event: str, data: dict[str, Any]) -> None:
        turn.outbox.put_nowait({"thread_id": turn.thread_id, "turn_id": turn.turn_id, "event": event, "data": data})
        if turn.sender_idle:
            turn.on_wire.clear()

    # -- the thread as chat messages -------------------------------------------------------------

    async def history(self, turn: Turn) -> list[dict[str, Any]]:
        """The thread so far as chat messages: this bot's messages as the assistant's (with their
        tool calls and results), everyone else's as the user's, named. A thread is read once
        (`threads.get`, every page) and then kept current from its notifications."""
        known = self._threads.get(turn.thread_id)
        if (
            known is None
            or sorted(known) != list(range(1, len(known) + 1))
            or turn.thread_id not in self._thread_toolkits
        ):
            known = await self._read_thread(turn)
        # a message's chat form is made once, until the message changes (a new record replaces it)
        cache = self._chat_forms.setdefault(turn.thread_id, {})
        messages: list[dict[str, Any]] = []
        for message in conversation_order(known):
            form = cache.get(message["seq"])
            if form is None or form[0] is not message:
                form = cache[message["seq"]] = (message, self._as_chat(message))
            messages += form[1]
        return messages

    async def _read_thread(self, turn: Turn) -> dict[int, dict[str, Any]]:
        known: dict[int, dict[str, Any]] = {}
        self._threads[turn.thread_id] = known  # notifications arriving meanwhile land here too
        since, more = 0, True
        while more:
            page = await self.room.invoke(
                "threads",
                "get",
                {"thread_id": turn.thread_id, "since_seq": since, "limit": 200},
                traceparent=turn.traceparent,
            )
            self._thread_toolkits[turn.thread_id] = _names(page.get("thread", {}).get("toolkits"))
            for message in page["messages"]:
                known[message["seq"]] = message
            since, more = page["next_since_seq"], page["more"]
        return known

    def _as_chat(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        text = "\n".join(p["text"] for p in message["parts"] if p.get("type") == "text" and p.get("text"))
        if message["author"]["participant_id"] != self.room.participant.id and message["author"]["identity"] != (
            self.room.participant.identity
        ):
            return [{"role": "user", "content": text, "name": _safe_name(message["author"]["identity"])}]
        # a budget approval is the bot's own step, not a tool the model called
        calls = [p for p in message["parts"] if p.get("type") == "tool_call" and not _is_budget_approval(p)]
        if not calls:
            return [{"role": "assistant", "content": text}]
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {
                    "id": call["call_id"],
                    "type": "function",
                    "function": {
                        "name": self._function_name(call["toolkit"], call["tool"]),
                        "arguments": json.dumps(call.get("arguments", {})),
                    },
                }
                for call in calls
            ],
        }
        results = [
            {"role": "tool", "tool_call_id": call["call_id"], "content": json.dumps(_tool_output(call))}
            for call in calls
        ]
        return [assistant, *results]

    # -- tools ---------------------------------------------------------------------------------

    async def select_tools(self, turn: Turn) -> list[dict[str, Any]]:
        """The tools offered to the model this turn (OpenAI `tools` format). Override to choose
        per thread or asker (this one records the names it offers in `turn.tools`)."""
        turn.tools = {}
        toolkits = [tk for tk in self.room.toolkits if self._offered(tk, turn)]
        functions = []
        for toolkit in toolkits:
            for spec in toolkit.tools:
                name = self._function_name(toolkit.name, spec.name)
                turn.tools[name] = (toolkit.name, spec.name, None if toolkit.public else toolkit.participant_id)
                functions.append(
                    {
                        "type": "function",
                        "function": {
                            "name": name,
                            "description": (spec.description or f"{toolkit.name}.{spec.name}")[:1024],
                            "parameters": spec.input_schema or {"type": "object"},
                        },
                    }
                )
        return functions

    def _offered(self, toolkit: ToolkitInfo, turn: Turn) -> bool:
        if toolkit.participant_id == self.room.participant.id:
            return False
        if self.offer_ui and toolkit.name == "ui" and toolkit.participant_id == turn.asker.get("participant_id"):
            return True
        if not toolkit.public:
            return False
        if any(fnmatch.fnmatchcase(toolkit.name, pattern) for pattern in self.tool_toolkits):
            return True
        chosen = self._thread_toolkits.get(turn.thread_id, [])
        return any(fnmatch.fnmatchcase(toolkit.name, pattern) for pattern in chosen) and any(
            fnmatch.fnmatchcase(toolkit.name, pattern) for pattern in self.thread_toolkits
        )

    @staticmethod
    def _function_name(toolkit: str, tool_name: str) -> str:
        name = f"{toolkit}__{tool_name}".replace(".", "_")
        if len(name) <= 64:
            return name
        return f"{name[:55]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"

    def needs_approval(self, toolkit: str, tool_name: str) -> bool:
        return any(fnmatch.fnmatchcase(f"{toolkit}.{tool_name}", pattern) for pattern in self.approvals)

    async def _run_tool(self, turn: Turn, call: ToolCallEnded) -> Any:
        """Runs one tool call the model asked for; whatever happens becomes the tool's result
        for the model and a `tool_call` part in the thread."""
        part: dict[str, Any] = {"type": "tool_call", "call_id": call.id, "status": "running"}
        turn.parts.append(part)
        target = turn.tools.get(call.name)
        if target is None:
            part.update(toolkit="unknown", tool=call.name[:64], status="error", error="no such tool")
            output: Any = {"error": f"there is no tool named {call.name!r}"}
            self._stream(turn, "tool_call_ended", {"call_id": call.id, "status": "error"})
            return output
        toolkit, tool_name, host = target
        part.update(toolkit=toolkit, tool=tool_name)
        try:
            arguments = call.arguments()
        except ValueError as exc:
            part.update(status="error", arguments=call.arguments_json[:2000], error=f"invalid JSON arguments: {exc}")
            self._stream(turn, "tool_call_ended", {"call_id": call.id, "status": "error"})
            return {"error": f"the arguments were not valid JSON: {exc}"}
        part["arguments"] = arguments
        if self.needs_approval(toolkit, tool_name):
            approved, decided_by = await self._ask_approval(turn, toolkit, tool_name, arguments)
            if not approved:
                reason = "the person did not approve this tool call" if decided_by else "nobody approved it in time"
                part.update(status="refused", error=reason, refused_by=decided_by)
                self._stream(turn, "tool_call_ended", {"call_id": call.id, "status": "refused"})
                return {"error": "the person did not approve this tool call"}
            part["approved_by"] = decided_by
        self._stream(
            turn,
            "tool_call_started",
            {"call_id": call.id, "toolkit": toolkit, "tool": tool_name, "arguments": arguments},
        )
        try:
            result = await self.room.invoke(
                toolkit,
                tool_name,
                arguments,
                participant_id=host,
                on_behalf_of_id=turn.asker.get("participant_id") if self.act_on_behalf else None,
                timeout=self.tool_timeout,
                traceparent=turn.traceparent,
                on_progress=lambda progress: self._stream(
                    turn, "tool_call_progress", {"call_id": call.id, "progress": progress}
                ),
            )
        except RpcError as exc:
            part.update(status="error", error=str(exc))
            output = {"error": str(exc)}
        else:
            part.update(status="ok", result=result)
            output = result
        self._stream(turn, "tool_call_ended", {"call_id": call.id, "status": part["status"]})
        return output

    async def _ask_approval(self, turn: Turn, toolkit: str, tool_name: str, arguments: Any) -> tuple[bool, str | None]:
        question = f"Allow {self.title or self.name} to run {toolkit}.{tool_name} with {json.dumps(arguments)[:500]}?"
        return await self._ask(turn, question)

    async def _ask(self, turn: Turn, question: str) -> tuple[bool, str | None]:
        """Asks the person who started the turn, in their own tab (`ui.ask_user`, Allow / Deny):
        (approved, who decided); nobody decided when they cannot be asked or do not answer in time."""
        asker = turn.asker.get("participant_id")
        with contextlib.suppress(RpcError, TimeoutError):
            answer = await self.room.invoke(
                "ui",
                "ask_user",
                {"question": question, "choices": ["Allow", "Deny"]},
                participant_id=asker,
                timeout=self.approval_timeout,
                traceparent=turn.traceparent,
            )
            decided_by = str(turn.asker.get("identity"))
            return isinstance(answer, dict) and answer.get("answer") == "Allow", decided_by
        return False, None


def conversation_order(messages: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """A thread's messages (seq → message) in conversation order: each answer right after the
    message it replies to (`reply_to`), though a question asked while it was being written was
    posted before it; everything else in seq order."""
    replies: dict[int, list[int]] = {}
    roots: list[int] = []
    for seq in sorted(messages):
        target = messages[seq].get("reply_to")
        if isinstance(target, int) and target < seq and target in messages:
            replies.setdefault(target, []).append(seq)
        else:
            roots.append(seq)
    ordered: list[dict[str, Any]] = []
    for root in roots:
        stack = [root]
        while stack:  # depth first, without recursion: a long chain of replies is fine
            seq = stack.pop()
            ordered.append(messages[seq])
            stack.extend(reversed(replies.get(seq, [])))
    return ordered


def _names(value: Any) -> list[str]:
    return [str(name) for name in value] if isinstance(value, list) else []


def _safe_name(identity: str) -> str:
    # OpenAI's `name` field allows letters, digits, '_' and '-' only
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in identity)[:64] or "user"


def _is_budget_approval(part: dict[str, Any]) -> bool:
    return part.get("toolkit") == "usage" and part.get("tool") == "request_approval"


def _tool_output(call: dict[str, Any]) -> Any:
    if call.get("status") == "ok":
        return call.get("result")
    return {"error": call.get("error") or f"the call ended as {call.get('status')}"}
