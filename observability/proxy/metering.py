"""Metering a proxied request: the estimate reserved before it, the usage recorded after it.

Estimates (for the reservation, and for a stream cut short before its usage chunk):
- input tokens: the request's messages and tools (chat) or inputs (embeddings), counted with the
  model's tiktoken encoding when it is on this machine, else 4 characters a token
  (`meshsite_client.llm.tokens`);
- output tokens: `max_completion_tokens` or `max_tokens`, else MESHSITE_PROXY_DEFAULT_OUTPUT_TOKENS,
  times `n`; for a stream cut short, the text and tool-call arguments actually streamed.

All database work runs on the proxy's own threads (`run_db` for what a response waits for,
`submit` for what it does not), each keeping its connection between requests.
"""

import asyncio
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
)
from django.utils import timezone
from meshsite_client.llm.tokens import TokenCounter, token_counter

from .. import budgets
from ..models import Kind, ModelPrice
from ..pricing import Amounts, cost_of, find_price
from ..usage import UsageFields, record_usage, record_usages, usage_values
from .auth import Caller, authenticate
from .errors import NO_RETRY, ProxyError
from .upstream import Upstream, upstream_for

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_TOKENS = 2**31 - 1  # what the ledger's token columns hold
MAX_CACHED = 10_000  # entries in each of the caches below; past it, a cache starts over

CHAT = "chat.completions"
EMBEDDINGS = "embeddings"
KINDS = {CHAT: Kind.LLM, EMBEDDINGS: Kind.EMBEDDING}


# --- threads ------------------------------------------------------------------------------------


@cache
def _gate_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.MESHSITE_PROXY_DB_THREADS, thread_name_prefix="proxy-db")


@cache
def _writers() -> int:
    # SQLite takes one writer at a time: a second thread would only wait for its lock.
    return 1 if connection.vendor == "sqlite" else 2


@cache
def _writer_executor() -> ThreadPoolExecutor:
    # Queued records are written before the interpreter exits (concurrent.futures joins its
    # workers after they finish their drains), so a graceful stop loses none.
    return ThreadPoolExecutor(max_workers=_writers(), thread_name_prefix="proxy-usage")


def _with_connection(function: Callable[..., T], *args: Any) -> T:
    """Runs `function` on this thread's persistent connection; a connection that went bad (the
    database restarted) is replaced and the function tried once more. Every job is a single
    transaction or a read, so a failed attempt left nothing behind."""
    try:
        return function(*args)
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        connection.close()
        return function(*args)


async def run_db(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        _gate_executor(), partial(_with_connection, function, *args)
    )


# A write that fails on the database is tried again after these pauses (seconds), then dropped
# with an error log (its reservation, if any, stops holding when it expires).
RETRY_PAUSES = (0.5, 2.0, 8.0)


# Writes waiting for a writer, and how many drains (jobs on the writer pool that write until
# none is left) are queued or running. Handing every write to the pool on its own would wake a
# writer thread, and hand it the GIL, once per request: under load a busy writer takes the next
# one from here instead.
_writes: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
_writes_lock = threading.Lock()
_draining = 0


def submit(function: Callable[..., Any], *args: Any) -> None:
    """Runs `function` on a usage writer, after the response has gone (in the order submitted,
    with SQLite's one writer)."""
    global _draining
    with _writes_lock:
        _writes.append((function, args))
        if _draining >= _writers():
            return
        _draining += 1
    try:
        _writer_executor().submit(_drain)
    except RuntimeError:  # the interpreter is exiting: a drain already running takes it, if any
        with _writes_lock:
            _draining -= 1
        raise


# Usage records written together by one drain, at most (one transaction, one commit).
BATCH = 100
# A drain starts this long (seconds) after the write that started it, and waits as long again
# after each batch while fewer than BATCH are queued (not after usage settling a reservation), so
# that the records of the requests meanwhile are written with it: a writer woken for each request
# (as at low concurrency, where the queue is empty every time) cost a thread switch and a
# transaction per request, and one that went on at once wrote the two or three records that
# arrived during its last write, a transaction (BEGIN, COMMIT) for each few.
WRITE_DELAY = 0.05


def _drain() -> None:
    global _draining
    batching = True
    while True:
        if batching and len(_writes) < BATCH:
            time.sleep(WRITE_DELAY)
        with _writes_lock:
            if not _writes:
                _draining -= 1
                return
            function, args = _writes.popleft()
            batch: list[Metered] = []
            if _batchable(function, args):
                batch.append(args[0])
                while _writes and len(batch) < BATCH and _batchable(*_writes[0]):
                    batch.append(_writes.popleft()[1][0])
        batching = bool(batch)  # usage settling a reservation is written at once, as it comes
        if len(batch) > 1:
            _write(record_many, (batch,))
        else:
            _write(function, args)


def _batchable(function: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    # usage settling a reservation locks it: those are written one by one, in order
    return function is record and args[0].gate.reservation_id is None


def _write(function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    name = getattr(function, "__name__", str(function))
    try:
        for pause in (*RETRY_PAUSES, None):
            try:
                _with_connection(function, *args)
                return
            except DatabaseError:
                if pause is None:
                    raise
                logger.warning("metering proxy: %s failed on the database; again in %ss", name, pause)
                connection.close()
                time.sleep(pause)
    except Exception:
        logger.exception("metering proxy: %s failed; the usage is not recorded", name)


# --- estimates ----------------------------------------------------------------------------------


def model_name(body: Mapping[str, Any]) -> str:
    """The request's model, as the ledger holds it (200 characters)."""
    return str(body.get("model") or "")[:200]


# Token counters are made (and an approximate one logged) once per model name; names come from
# requests, so past this many, other names are counted approximately without making one.
MAX_COUNTED_MODELS = 1000
_APPROXIMATE = TokenCounter("", None, "too many distinct model names")


def counter_for(model: str) -> TokenCounter:
    counter = _counters.get(model)
    if counter is None:
        if len(_counters) >= MAX_COUNTED_MODELS:
            return _APPROXIMATE
        counter = _counters.setdefault(model, token_counter(model))
    return counter


_counters: dict[str, TokenCounter] = {}


def _count(model: str, text: str) -> int:
    return counter_for(model).count_text(text)


def estimate_input(endpoint: str, body: Mapping[str, Any]) -> int:
    model = str(body.get("model") or "")
    if endpoint == EMBEDDINGS:
        items = body.get("input")
        items = items if isinstance(items, list) else [items]
        if items and all(isinstance(item, int) for item in items):
            return len(items)  # one input given as tokens
        total = 0
        for item in items:
            if isinstance(item, str):
                total += _count(model, item)
            elif isinstance(item, list):
                total += len(item)
        return total
    counter = counter_for(model)
    messages = body.get("messages")
    tools = body.get("tools")
    total = counter.count_messages([m for m in messages if isinstance(m, dict)]) if isinstance(messages, list) else 0
    return total + (counter.count_tools(tools) if isinstance(tools, list) else 0)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def estimate_output(endpoint: str, body: Mapping[str, Any]) -> int:
    if endpoint != CHAT:
        return 0
    limit = _int(body.get("max_completion_tokens")) or _int(body.get("max_tokens"))
    choices = _int(body.get("n")) or 1
    return min(MAX_TOKENS, (limit or settings.MESHSITE_PROXY_DEFAULT_OUTPUT_TOKENS) * choices)


def estimate(endpoint: str, body: Mapping[str, Any]) -> Amounts:
    return Amounts(
        input_tokens=min(MAX_TOKENS, estimate_input(endpoint, body)), output_tokens=estimate_output(endpoint, body)
    )


# --- before: who, where to, and the reservation --------------------------------------------------


@dataclass(frozen=True)
class Gate:
    caller: Caller
    upstream: Upstream
    # an active budget applies to the caller's project or room
    budgeted: bool = False
    reservation_id: str | None = None
    needs_approval: bool = False


def budget_refusal(exc: budgets.BudgetExceeded) -> ProxyError:
    return ProxyError(
        429, exc.message, type="budget_exceeded", code="budget_exceeded", headers=NO_RETRY, param=None, **exc.data
    )


def gate(
    authorization: str,
    project: str,
    endpoint: str | None,
    body: Mapping[str, Any] | None,
    known: Gate | None = None,
) -> Gate:
    """Authenticates (unless `known`, a recent gate of the same credential, says who), finds the
    upstream and, when a budget applies to the caller's project or room, reserves the request's
    estimated cost (raising 429 over a hard budget). `endpoint` None: nothing to meter."""
    if known is not None:
        caller, upstream = known.caller, known.upstream
    else:
        caller = authenticate(authorization, project)
        upstream = upstream_for(caller.project_slug)
    who = caller.who
    # a recent gate that found budgets is taken at its word (reserving where none applies any
    # more holds nothing); otherwise look
    budgeted = (known is not None and known.budgeted) or budgets.applicable(who.project_id, who.room_id).exists()
    if endpoint is None or body is None or not budgeted:
        return Gate(caller, upstream, budgeted)
    kind, model = KINDS[endpoint], model_name(body)
    amount = estimated_cost(kind, model, estimate(endpoint, body))
    try:
        reservation, _states = budgets.reserve(who, amount, kind=kind, model=model)
    except budgets.BudgetExceeded as exc:
        raise budget_refusal(exc) from None
    return Gate(caller, upstream, True, reservation.public_id, reservation.needs_approval)


# The price an estimate is made at, by (kind, model): (good until, price). A reservation is an
# estimate, so a price that changed in the last MESHSITE_PROXY_CACHE_SECONDS does not matter here;
# the usage record is priced afresh.
_prices: dict[tuple[str, str], tuple[float, ModelPrice | None]] = {}
_prices_lock = threading.Lock()


def estimated_cost(kind: str, model: str, amounts: Amounts) -> Decimal:
    now = time.monotonic()
    with _prices_lock:
        entry = _prices.get((kind, model))
    if entry is None or now >= entry[0]:
        price = find_price(kind, model, timezone.now())
        entry = (now + settings.MESHSITE_PROXY_CACHE_SECONDS, price)
        with _prices_lock:
            if len(_prices) >= MAX_CACHED:
                _prices.clear()
            _prices[(kind, model)] = entry
    price = entry[1]
    return cost_of(price, amounts) if price is not None else Decimal(0)


# Recent gates by credential, on the event loop's thread only: (good until, gate without its
# reservation). A credential seen in the last MESHSITE_PROXY_CACHE_SECONDS is not looked up again,
# nor, when no budget applied to it, are budgets: a revoked key, a deleted room or a new budget
# takes effect that much later (an expired token never does: its expiry is checked every time).
_gates: dict[tuple[str, str], tuple[float, Gate]] = {}


def recent_gate(authorization: str, project: str) -> Gate | None:
    entry = _gates.get((authorization, project))
    if entry is None:
        return None
    good_until, known = entry
    if time.monotonic() >= good_until or (known.caller.expires_at and time.time() >= known.caller.expires_at):
        del _gates[(authorization, project)]
        return None
    return known


def remember_gate(authorization: str, project: str, gate: Gate) -> None:
    ttl = settings.MESHSITE_PROXY_CACHE_SECONDS
    if ttl <= 0:
        return
    if len(_gates) >= MAX_CACHED:
        _gates.clear()
    _gates[(authorization, project)] = (time.monotonic() + ttl, Gate(gate.caller, gate.upstream, gate.budgeted))


async def open_gate(authorization: str, project: str, endpoint: str | None, body: Mapping[str, Any] | None) -> Gate:
    """`gate`, without a database round trip for a recently seen credential without budgets."""
    known = recent_gate(authorization, project)
    if known is not None and (not known.budgeted or endpoint is None):
        return known
    opened = await run_db(gate, authorization, project, endpoint, body, known)
    if known is None:
        remember_gate(authorization, project, opened)
    return opened


def release(gate: Gate) -> None:
    if gate.reservation_id is not None:
        who = gate.caller.who
        budgets.release(gate.reservation_id, who.project_id, who.room_id)


# --- after: the usage ---------------------------------------------------------------------------


def usage_amounts(endpoint: str, usage: Any) -> Amounts | None:
    """An OpenAI `usage` object → amounts; None when it is not one."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    if not isinstance(prompt, int) or isinstance(prompt, bool) or prompt < 0:
        return None
    if endpoint == EMBEDDINGS:
        return Amounts(input_tokens=min(prompt, MAX_TOKENS))
    completion = usage.get("completion_tokens")
    completion = completion if isinstance(completion, int) and not isinstance(completion, bool) else 0
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    cached = cached if isinstance(cached, int) and not isinstance(cached, bool) and cached > 0 else 0
    return Amounts(
        input_tokens=min(prompt, MAX_TOKENS),
        output_tokens=min(max(completion, 0), MAX_TOKENS),
        cached_tokens=min(cached, prompt),
    )


def event_data(event: bytes) -> Any:
    """The JSON of one SSE event's `data:` lines; None for `[DONE]`, comments, or non-JSON."""
    lines = [line[5:].lstrip(b" ") for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    data = b"\n".join(lines)
    if data.strip() == b"[DONE]":
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


EVENT_END = re.compile(rb"\r?\n\r?\n")


def split_events(blob: bytes) -> list[bytes]:
    return [event for event in EVENT_END.split(blob) if event.strip()]


def streamed_text(blobs: Iterable[bytes]) -> str:
    """What a stream's chunks carried so far (`blobs`: whole events as they were passed on):
    content, refusals, reasoning, tool-call names and arguments (the tokens a cut-short stream is
    estimated from)."""
    parts: list[str] = []
    for event in (event for blob in blobs for event in split_events(blob)):
        chunk = event_data(event)
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            for key in ("content", "refusal", "reasoning_content", "reasoning"):
                if isinstance(delta.get(key), str):
                    parts.append(delta[key])
            for call in delta.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    parts.extend(str(function.get(key) or "") for key in ("name", "arguments"))
    return "".join(parts)


def completion_text(response: Any) -> str:
    """The text of a non-streamed answer without usage (to estimate its tokens)."""
    choices = response.get("choices") if isinstance(response, dict) else None
    parts: list[str] = []
    for choice in choices if isinstance(choices, list) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            parts.append(str(message.get("content") or ""))
            parts.extend(json.dumps(call) for call in message.get("tool_calls") or [])
    return "".join(parts)


@dataclass
class Metered:
    """One proxied request's usage, as the writer records it."""

    gate: Gate
    endpoint: str
    body: Mapping[str, Any]
    model: str
    trace_id: str
    span_id: str
    thread_id: str
    turn_id: str
    metadata: dict[str, Any]
    amounts: Amounts | None = None
    # when `amounts` is None: estimate from the request and this text, for this reason
    streamed: str | Iterable[bytes] = ""
    estimate_reason: str = ""


def record(metered: Metered) -> None:
    """Writes the usage record (priced now) and settles the reservation. Without usage from the
    upstream, tokens are estimated: input from the request, output from what was produced."""
    gate = metered.gate
    if gate.reservation_id is None:
        record_usages([usage_of(metered)])
        return
    record_usage(gate.caller.who, reservation_id=gate.reservation_id, **_usage_fields(metered))


def record_many(batch: list[Metered]) -> None:
    """`record` for several requests without reservations, in one transaction."""
    record_usages([usage_of(metered) for metered in batch])


def usage_of(metered: Metered) -> dict[str, Any]:
    return usage_values(metered.gate.caller.who, **_usage_fields(metered))


def _usage_fields(metered: Metered) -> UsageFields:
    metadata = dict(metered.metadata)
    amounts = metered.amounts
    if amounts is None:
        text = metered.streamed if isinstance(metered.streamed, str) else streamed_text(metered.streamed)
        amounts = Amounts(
            input_tokens=min(MAX_TOKENS, estimate_input(metered.endpoint, metered.body)),
            output_tokens=min(MAX_TOKENS, _count(metered.model, text)) if text else 0,
        )
        metadata["usage_estimated"] = True
        metadata["estimate_reason"] = metered.estimate_reason
        metadata["estimate_method"] = counter_for(metered.model).method
    return {
        "kind": KINDS[metered.endpoint],
        "model": metered.model,
        "amounts": amounts,
        "thread_id": metered.thread_id,
        "turn_id": metered.turn_id,
        "trace_id": metered.trace_id,
        "span_id": metered.span_id,
        "metadata": metadata,
    }
