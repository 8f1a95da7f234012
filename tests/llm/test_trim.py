"""`trim_to_window`: oldest turns go first, rules and tool-call pairs stay intact."""

from typing import Any

import pytest
from meshsite_client.llm import ContextWindowExceeded, LLMConfig, TextDelta, stream_chat, token_counter, trim_to_window

from tests.support.fake_openai import FakeOpenAI, validate_chat_request

SYSTEM = {"role": "system", "content": "You are the lobby assistant. Be brief."}


def ten_each(message: Any) -> int:
    return 10


def turn(n: int, *, tools: bool = True, padding: int = 0) -> list[dict[str, Any]]:
    """One user turn: question, (a tool call with two parallel calls and their results), answer."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"question {n} " + "x" * padding}]
    if tools:
        ids = [f"call_{n}_a", f"call_{n}_b"]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
                    for i in ids
                ],
            }
        )
        messages += [{"role": "tool", "tool_call_id": i, "content": "result " + "y" * padding} for i in ids]
    messages.append({"role": "assistant", "content": f"answer {n} " + "z" * padding})
    return messages


def conversation(turns: int, **kwargs: Any) -> list[dict[str, Any]]:
    messages = [SYSTEM]
    for n in range(turns):
        messages += turn(n, **kwargs)
    return messages


def test_a_conversation_that_fits_is_left_alone() -> None:
    messages = conversation(3)

    result = trim_to_window(messages, 1000, ten_each)

    assert result.dropped == 0
    assert result.messages == messages
    assert all(a is b for a, b in zip(result.messages, messages, strict=True)), "the same dicts, not copies"


def test_oldest_whole_turns_are_dropped_first() -> None:
    messages = conversation(5)  # 1 + 5 * 5 messages, 10 tokens each = 260

    result = trim_to_window(messages, 120, ten_each)

    # Budget 120 = system (10) + two turns (50 each): turns 0..2 go.
    assert result.dropped == 15
    assert result.messages == [SYSTEM, *turn(3), *turn(4)]
    messages_tokens = sum(ten_each(m) for m in result.messages)
    assert messages_tokens <= 120


def test_reserve_is_kept_free() -> None:
    messages = conversation(5)

    result = trim_to_window(messages, 120, ten_each, reserve=50)

    assert result.messages == [SYSTEM, *turn(4)]


def test_a_context_far_larger_than_the_window_is_trimmed_to_fit() -> None:
    count = token_counter("gpt-4o-mini")
    messages = conversation(2000, padding=200)  # about 2.3M characters
    window = 4000
    assert count.count_messages(messages) > 100 * window

    result = trim_to_window(messages, window, count, reserve=500)

    assert sum(count(m) for m in result.messages) <= window - 500
    assert result.messages[0] is SYSTEM
    assert result.dropped == len(messages) - len(result.messages)
    assert result.dropped > 9000
    assert result.messages[-5:] == turn(1999, padding=200), "the newest turn is whole"
    assert result.messages[1]["role"] == "user", "what is kept starts at a turn's beginning"
    assert validate_chat_request({"model": "m", "messages": result.messages}) is None, "no orphaned tool message"


async def test_the_trimmed_context_is_accepted_upstream(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    count = token_counter(config.model)
    messages = conversation(500, padding=100)
    trimmed = trim_to_window(messages, 2000, count, reserve=200)
    fake_openai.reply("still here")

    events = [e async for e in stream_chat(config, trimmed.messages)]

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "still here"
    assert fake_openai.last_request.status == 200
    assert fake_openai.last_request.messages == trimmed.messages


def test_a_tool_call_and_its_results_are_dropped_together() -> None:
    # In the newest turn, a big tool call must go: its two results go with it, and nothing else.
    big_call, later_call = turn(0)[1], turn(1)[1]
    messages = [
        SYSTEM,
        {"role": "user", "content": "compare"},
        big_call,
        *turn(0)[2:4],
        later_call,
        *turn(1)[2:4],
        {"role": "assistant", "content": "done"},
    ]
    counts = {id(m): 10 for m in messages}
    counts[id(big_call)] = 40

    result = trim_to_window(messages, 80, lambda m: counts[id(m)])

    assert result.dropped == 3
    assert result.messages == [SYSTEM, messages[1], later_call, *turn(1)[2:4], messages[-1]]
    assert validate_chat_request({"model": "m", "messages": result.messages}) is None


def test_within_a_long_newest_turn_older_steps_go_but_the_request_and_the_latest_step_stay() -> None:
    # One turn where the model called tools twenty times in a row.
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "research this"}]
    for n in range(20):
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"c{n}", "type": "function", "function": {"name": "search", "arguments": "{}"}}],
            }
        )
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": f"page {n}"})

    result = trim_to_window(messages, 100, ten_each)

    assert result.messages[:2] == messages[:2]
    assert result.messages[-2:] == messages[-2:]
    assert sum(10 for _ in result.messages) <= 100
    assert validate_chat_request({"model": "m", "messages": result.messages}) is None


def test_system_messages_anywhere_are_never_dropped() -> None:
    note = {"role": "developer", "content": "The user prefers metric units."}
    messages = [SYSTEM, *turn(0), note, *turn(1), *turn(2)]

    result = trim_to_window(messages, 80, ten_each)

    assert result.messages[0] is SYSTEM
    assert note in result.messages
    assert result.messages[-5:] == turn(2)


def test_when_even_the_minimum_does_not_fit_it_says_so() -> None:
    messages = [SYSTEM, {"role": "user", "content": "x" * 10_000}]

    with pytest.raises(ContextWindowExceeded) as caught:
        trim_to_window(messages, 1000, token_counter("some-local-model"))

    assert "context window is 1000 tokens" in str(caught.value)
    assert caught.value.code == "context_length_exceeded"
