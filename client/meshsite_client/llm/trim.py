"""`trim_to_window`: make a conversation fit the model's context window by forgetting its oldest turns.

What is kept, in this order of priority:
1. every `system` / `developer` message (the rules), wherever it stands;
2. the newest turn's opening `user` message and its newest step;
3. whole turns, newest first (a turn runs from a `user` message to the next one);
4. within the newest turn, its steps, newest first.

A step is one message, or an assistant message with `tool_calls` together with the `tool`
messages answering it: they are dropped together, so the model never sees a tool result without
its call or a call without its result (the upstream rejects both). Kept messages keep their
order and are the very same dict objects.

When even (1) and (2) do not fit, `ContextWindowExceeded` is raised with the numbers: no
dropping can help then, and the caller should say so rather than send a request bound to fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .errors import ContextWindowExceeded
from .tokens import MessageTokenCounter

PINNED_ROLES = frozenset({"system", "developer"})


class TrimResult(NamedTuple):
    """The messages to send, and how many of the input's messages were left out."""

    messages: list[dict[str, Any]]
    dropped: int


def trim_to_window(
    messages: Sequence[Mapping[str, Any]],
    context_window: int,
    count_tokens: MessageTokenCounter,
    *,
    reserve: int = 0,
) -> TrimResult:
    """Drop the oldest turns until the messages' tokens plus `reserve` fit `context_window`.

    `count_tokens` counts one message (see `token_counter`). `reserve` is kept free for what is not
    in `messages`: the answer, the tool definitions, the reply's priming tokens.
    """
    budget = context_window - reserve
    counts = [count_tokens(m) for m in messages]
    total = sum(counts)
    if total <= budget:
        return TrimResult([_as_dict(m) for m in messages], 0)

    pinned = [i for i, m in enumerate(messages) if m.get("role") in PINNED_ROLES]
    steps = _steps(messages)
    turns = _turns(messages, steps)

    dropped: set[int] = set()

    def cost(indices: Sequence[int]) -> int:
        return sum(counts[i] for i in indices)

    # 3. Whole turns, oldest first, never the newest one.
    for turn in turns[:-1]:
        if total <= budget:
            break
        for step in turn:
            dropped.update(step)
            total -= cost(step)

    # 4. Within the newest turn: its steps, oldest first, keeping its opening user message and its
    #    newest step.
    if total > budget and turns:
        last = turns[-1]
        opening = last[0] if messages[last[0][0]].get("role") == "user" else None
        for step in last[:-1]:
            if total <= budget:
                break
            if step is opening:
                continue
            dropped.update(step)
            total -= cost(step)

    if total > budget:
        raise ContextWindowExceeded(
            f"the conversation needs {total + reserve} tokens even after dropping {len(dropped)} older "
            f"message(s) (kept: {len(pinned)} system message(s) and the newest request, {total} tokens, plus "
            f"{reserve} reserved), but the model's context window is {context_window} tokens; shorten the "
            f"system prompt or the last message, or use a model with a larger window",
            code="context_length_exceeded",
        )

    return TrimResult([_as_dict(m) for i, m in enumerate(messages) if i not in dropped], len(dropped))


def _as_dict(message: Mapping[str, Any]) -> dict[str, Any]:
    return message if isinstance(message, dict) else dict(message)


def _steps(messages: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Non-pinned message indices grouped into steps (a tool call and its results are one step)."""
    steps: list[list[int]] = []
    open_calls: set[str] = set()
    current: list[int] | None = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in PINNED_ROLES:
            continue
        if role == "tool" and current is not None and message.get("tool_call_id") in open_calls:
            current.append(i)
            continue
        tool_calls = message.get("tool_calls") if role == "assistant" else None
        current = [i]
        steps.append(current)
        if tool_calls:
            open_calls = {str(c["id"]) for c in tool_calls if isinstance(c, Mapping) and c.get("id")}
        else:
            open_calls = set()
            current = None
    return steps


def _turns(messages: Sequence[Mapping[str, Any]], steps: list[list[int]]) -> list[list[list[int]]]:
    """Steps grouped into turns; a turn starts at each user message."""
    turns: list[list[list[int]]] = []
    for step in steps:
        if not turns or messages[step[0]].get("role") == "user":
            turns.append([step])
        else:
            turns[-1].append(step)
    return turns
