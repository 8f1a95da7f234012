"""`stream_chat` against the fake OpenAI server, through the real `openai` client."""

import asyncio
import contextlib
import dataclasses
import json
import time

import pytest
from meshsite_client.llm import (
    ChatResult,
    ContextWindowExceeded,
    Finished,
    LLMAuthError,
    LLMBadRequest,
    LLMConfig,
    LLMConnectionError,
    LLMEvent,
    LLMRateLimited,
    LLMServerError,
    LLMStreamError,
    NoLLMConfigured,
    Retrying,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallEnded,
    ToolCallStarted,
    Usage,
    stream_chat,
)
from meshsite_client.tracing import current_traceparent, new_traceparent, trace_id_of

from tests.support.fake_openai import FakeOpenAI, ToolCall
from tests.support.servers import free_port

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def collect(config: LLMConfig, messages=MESSAGES, **kwargs) -> list[LLMEvent]:
    return [event async for event in stream_chat(config, messages, **kwargs)]


def texts(events: list[LLMEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


async def test_streams_text_deltas_then_usage_and_finished(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply("Hello there, how can I help?")

    events = await collect(config)

    assert len(texts(events)) > 1, "the answer arrives in several deltas"
    assert "".join(texts(events)) == "Hello there, how can I help?"
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finished("stop")
    request = fake_openai.last_request
    assert request.stream and request.include_usage
    assert request.model == "gpt-4o-mini"
    assert request.messages == MESSAGES
    assert "tools" not in request.body and "tool_choice" not in request.body
    assert request.headers["authorization"] == "Bearer sk-test"


async def test_a_tool_call_with_arguments_split_across_chunks(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    arguments = {"city": "Oslo", "unit": "celsius"}
    fake_openai.reply(tool_calls=[ToolCall("get_weather", arguments, id="call_w1")], argument_chunks=5)

    events = await collect(config, tools=[WEATHER_TOOL], tool_choice="auto")

    assert events[0] == ToolCallStarted(0, "call_w1", "get_weather")
    deltas = [e.delta for e in events if isinstance(e, ToolCallArgumentsDelta)]
    assert len(deltas) == 5
    assert "".join(deltas) == json.dumps(arguments)
    ended = [e for e in events if isinstance(e, ToolCallEnded)]
    assert ended == [ToolCallEnded(0, "call_w1", "get_weather", json.dumps(arguments))]
    assert ended[0].arguments() == arguments
    assert events[-1] == Finished("tool_calls")
    # Ended comes after every delta: it is emitted once the stream has ended.
    assert events.index(ended[0]) > max(i for i, e in enumerate(events) if isinstance(e, ToolCallArgumentsDelta))
    assert fake_openai.last_request.tools == [WEATHER_TOOL]
    assert fake_openai.last_request.body["tool_choice"] == "auto"


@pytest.mark.parametrize("interleave", [False, True], ids=["one-after-the-other", "interleaved"])
async def test_two_parallel_tool_calls(fake_openai: FakeOpenAI, config: LLMConfig, interleave: bool) -> None:
    fake_openai.reply(
        tool_calls=[
            ToolCall("get_weather", {"city": "Oslo"}, id="call_a"),
            ToolCall("get_weather", {"city": "Lima"}, id="call_b"),
        ],
        argument_chunks=3,
        interleave=interleave,
    )

    events = await collect(config, tools=[WEATHER_TOOL])

    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert started == [ToolCallStarted(0, "call_a", "get_weather"), ToolCallStarted(1, "call_b", "get_weather")]
    for index, city in ((0, "Oslo"), (1, "Lima")):
        pieces = [e.delta for e in events if isinstance(e, ToolCallArgumentsDelta) and e.index == index]
        assert json.loads("".join(pieces)) == {"city": city}
    ended = [e for e in events if isinstance(e, ToolCallEnded)]
    assert [(e.index, e.id, e.arguments()) for e in ended] == [
        (0, "call_a", {"city": "Oslo"}),
        (1, "call_b", {"city": "Lima"}),
    ]


async def test_text_then_a_tool_call_in_one_answer(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply("Let me check.", tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="c1")])

    result = ChatResult()
    async for event in stream_chat(config, MESSAGES, tools=[WEATHER_TOOL]):
        result.feed(event)

    assert result.to_message() == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
        ],
    }
    assert result.finish_reason == "tool_calls"


async def test_usage_chunk_is_reported(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply("ok", usage=(1200, 34), cached_tokens=1024, reasoning_tokens=8)

    events = await collect(config)

    usage = [e for e in events if isinstance(e, Usage)]
    assert usage == [Usage(1200, 34, 1234, cached_tokens=1024, reasoning_tokens=8, model="gpt-4o-mini")]


async def test_without_include_usage_there_is_no_usage_event(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply("ok")

    events = await collect(dataclasses.replace(config, include_usage=False))

    assert not any(isinstance(e, Usage) for e in events)
    assert events[-1] == Finished("stop")
    assert "stream_options" not in fake_openai.last_request.body


async def test_a_429_then_success_is_retried_after_retry_after(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.error(429, "Rate limit reached for gpt-4o-mini", retry_after_ms=60)
    fake_openai.reply("made it")

    started = time.perf_counter()
    events = await collect(config)
    elapsed = time.perf_counter() - started

    retrying = [e for e in events if isinstance(e, Retrying)]
    assert len(retrying) == 1
    assert retrying[0].attempt == 1
    assert retrying[0].delay == pytest.approx(0.06)
    assert isinstance(retrying[0].error, LLMRateLimited)
    assert retrying[0].error.message == "Rate limit reached for gpt-4o-mini"
    assert events[0] is retrying[0], "a retry is announced before any output"
    assert "".join(texts(events)) == "made it"
    assert elapsed >= 0.06
    assert len(fake_openai.chat_requests) == 2
    assert fake_openai.requests[0].body == fake_openai.requests[1].body, "the same request is sent again"


async def test_a_429_asking_to_wait_too_long_is_not_retried(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.error(429, "You exceeded your current quota", code="insufficient_quota", retry_after=3600)

    with pytest.raises(LLMRateLimited) as caught:
        await collect(config)

    assert caught.value.retry_after == 3600
    assert caught.value.code == "insufficient_quota"
    assert len(fake_openai.requests) == 1


async def test_500s_exhaust_the_retries(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    for _ in range(3):
        fake_openai.error(500, "The server had an error while processing your request.")

    seen: list[LLMEvent] = []
    with pytest.raises(LLMServerError) as caught:
        async for event in stream_chat(config, MESSAGES):
            seen.append(event)

    assert caught.value.status == 500
    assert caught.value.message == "The server had an error while processing your request."
    assert caught.value.type == "server_error"
    assert caught.value.retryable
    assert len(fake_openai.requests) == 3, "one try and max_retries=2 retries"
    assert [type(e) for e in seen] == [Retrying, Retrying]
    assert [e.attempt for e in seen if isinstance(e, Retrying)] == [1, 2]


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [(400, None, LLMBadRequest), (404, "model_not_found", LLMBadRequest), (401, "invalid_api_key", LLMAuthError)],
)
async def test_client_errors_are_not_retried(
    fake_openai: FakeOpenAI, config: LLMConfig, status: int, code: str | None, error_class: type
) -> None:
    fake_openai.error(status, "The model `gpt-9` does not exist", code=code)

    with pytest.raises(error_class) as caught:
        await collect(config)

    assert caught.value.status == status
    assert caught.value.message == "The model `gpt-9` does not exist"
    assert not caught.value.retryable
    assert len(fake_openai.requests) == 1


async def test_context_length_exceeded_is_its_own_error(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.error(400, "This model's maximum context length is 128000 tokens.", code="context_length_exceeded")

    with pytest.raises(ContextWindowExceeded) as caught:
        await collect(config)

    assert caught.value.status == 400


async def test_a_stream_dropped_midway_raises_a_stream_error(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply("one two three four five six seven", drop_after=4)

    seen: list[LLMEvent] = []
    with pytest.raises(LLMStreamError) as caught:
        async for event in stream_chat(config, MESSAGES):
            seen.append(event)

    assert texts(seen) == ["one", " two", " three"], "what came before the break was delivered"
    assert not any(isinstance(e, ToolCallEnded | Finished) for e in seen)
    assert "broke after 4 chunk(s)" in str(caught.value)
    assert len(fake_openai.requests) == 1, "output had begun: not retried"


async def test_a_stream_dropped_in_a_tool_call_raises_without_ending_the_call(
    fake_openai: FakeOpenAI, config: LLMConfig
) -> None:
    fake_openai.reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})], argument_chunks=4, drop_after=3)

    seen: list[LLMEvent] = []
    with pytest.raises(LLMStreamError):
        async for event in stream_chat(config, MESSAGES, tools=[WEATHER_TOOL]):
            seen.append(event)

    assert any(isinstance(e, ToolCallStarted) for e in seen)
    assert not any(isinstance(e, ToolCallEnded) for e in seen)


async def test_a_stream_that_ends_before_the_model_finished_is_an_error(
    fake_openai: FakeOpenAI, config: LLMConfig
) -> None:
    fake_openai.reply("one two three four", end_after=3)

    with pytest.raises(LLMStreamError, match="ended the stream before the model finished"):
        await collect(config)


async def test_a_drop_before_any_output_is_retried(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply("lost", drop_after=1)  # only the role chunk, which carries no output
    fake_openai.reply("second time lucky")

    events = await collect(config)

    assert isinstance(events[0], Retrying)
    assert isinstance(events[0].error, LLMStreamError)
    assert "".join(texts(events)) == "second time lucky"
    assert len(fake_openai.requests) == 2


async def test_an_error_event_inside_the_stream(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply(
        "one two three",
        error_event_after=3,
        error_event={"message": "Upstream overloaded", "type": "invalid_request_error", "code": None},
    )

    with pytest.raises(LLMStreamError, match="Upstream overloaded"):
        await collect(config)


async def test_invalid_json_tool_arguments_are_surfaced_as_they_are(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    broken = '{"city": "Oslo", "unit": '
    fake_openai.reply(tool_calls=[ToolCall("get_weather", broken, id="call_x")], argument_chunks=3)

    events = await collect(config, tools=[WEATHER_TOOL])

    ended = [e for e in events if isinstance(e, ToolCallEnded)]
    assert ended == [ToolCallEnded(0, "call_x", "get_weather", broken)]
    with pytest.raises(ValueError):
        ended[0].arguments()
    assert events[-1] == Finished("tool_calls")


async def test_no_key_and_no_base_url_raises_no_llm_configured(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    with pytest.raises(NoLLMConfigured) as caught:
        await collect(LLMConfig(model="gpt-4o-mini", service="assistant"))

    message = str(caught.value)
    assert "OPENAI_API_KEY" in message and "OPENAI_BASE_URL" in message and "'assistant'" in message
    assert fake_openai.requests == []


async def test_a_base_url_from_the_environment_needs_no_key(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.reply("local model here")

    events = await collect(LLMConfig(model="llama3.2"))

    assert "".join(texts(events)) == "local model here"
    assert fake_openai.last_request.headers["authorization"] == "Bearer no-key"
    assert fake_openai.last_request.model == "llama3.2"


async def test_an_unreachable_upstream_is_a_connection_error_after_retries(config: LLMConfig) -> None:
    unreachable = dataclasses.replace(config, base_url=f"http://127.0.0.1:{free_port()}/v1")

    events: list[LLMEvent] = []
    with pytest.raises(LLMConnectionError):
        async for event in stream_chat(unreachable, MESSAGES):
            events.append(event)

    assert [type(e) for e in events] == [Retrying, Retrying]


async def test_options_and_traceparent_are_sent(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply("ok")
    parent = new_traceparent()
    token = current_traceparent.set(parent)
    try:
        await collect(dataclasses.replace(config, options={"temperature": 0.2, "parallel_tool_calls": False}))
    finally:
        current_traceparent.reset(token)

    request = fake_openai.last_request
    assert request.body["temperature"] == 0.2
    assert request.body["parallel_tool_calls"] is False
    sent = request.headers["traceparent"]
    assert trace_id_of(sent) == trace_id_of(parent) and sent != parent, "a child span of the turn's trace"


async def test_closing_the_stream_early_disconnects_from_the_upstream(
    fake_openai: FakeOpenAI, config: LLMConfig
) -> None:
    fake_openai.reply("one two three four five six seven eight nine ten", hold_after=3)

    events = stream_chat(config, MESSAGES)
    async with contextlib.aclosing(events):
        async for event in events:
            assert event == TextDelta("one")
            break  # an interrupted turn

    fake_openai.release()
    request = fake_openai.last_request
    assert await asyncio.to_thread(request.done.wait, 2)
    assert request.disconnected, "the upstream saw the client go away"


async def test_the_history_with_tool_results_is_accepted_by_the_upstream(
    fake_openai: FakeOpenAI, config: LLMConfig
) -> None:
    fake_openai.reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_weather", {"city": "Rome"})])
    fake_openai.reply("Oslo is cold, Rome is warm.")
    messages = list(MESSAGES)

    first = ChatResult()
    async for event in stream_chat(config, messages, tools=[WEATHER_TOOL]):
        first.feed(event)
    messages.append(first.to_message())
    for call in first.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": f"{call.arguments()['city']}: ok"})
    second = ChatResult()
    async for event in stream_chat(config, messages, tools=[WEATHER_TOOL]):
        second.feed(event)

    assert second.text == "Oslo is cold, Rome is warm."
    assert fake_openai.requests[1].status == 200, "the fake validates tool-call/tool-result pairing"
    assert fake_openai.requests[1].messages == messages


def raw_chunk(delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "other-server-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


async def test_parallel_calls_all_at_index_0_with_their_own_ids(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    # Some OpenAI-compatible servers number every call 0 and tell them apart by id only.
    fake_openai.reply(
        raw_chunks=[
            raw_chunk({"role": "assistant"}),
            raw_chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"n": 1}'}}]}),
            raw_chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": '{"n": 2}'}}]}),
            raw_chunk({}, "tool_calls"),
        ]
    )

    events = await collect(config)

    ended = [e for e in events if isinstance(e, ToolCallEnded)]
    assert [(e.index, e.id, e.name, e.arguments()) for e in ended] == [(0, "a", "f", {"n": 1}), (1, "b", "g", {"n": 2})]


async def test_a_call_without_an_id_gets_one_and_early_arguments_are_kept(
    fake_openai: FakeOpenAI, config: LLMConfig
) -> None:
    fake_openai.reply(
        raw_chunks=[
            raw_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}),
            raw_chunk({"tool_calls": [{"index": 0, "function": {"name": "search", "arguments": ' "x"}'}}]}),
            raw_chunk({}, "stop"),  # some servers say stop even after a tool call
        ]
    )

    events = await collect(config)

    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert len(started) == 1 and started[0].name == "search" and started[0].id.startswith("call_")
    deltas = "".join(e.delta for e in events if isinstance(e, ToolCallArgumentsDelta))
    assert deltas == '{"q": "x"}'
    ended = [e for e in events if isinstance(e, ToolCallEnded)]
    assert ended == [ToolCallEnded(0, started[0].id, "search", '{"q": "x"}')]
    assert events[-1] == Finished("stop")


async def test_a_drop_after_the_model_finished_keeps_the_answer(
    fake_openai: FakeOpenAI, config: LLMConfig, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.reply("done", drop_after=3)  # role, text, finish: the usage chunk is lost

    events = await collect(config)

    assert "".join(texts(events)) == "done"
    assert events[-1] == Finished("stop")
    assert not any(isinstance(e, Usage) for e in events)
    assert "before its usage chunk" in caplog.text


async def test_a_malformed_chunk_is_a_stream_error(fake_openai: FakeOpenAI, config: LLMConfig) -> None:
    fake_openai.reply(raw_chunks=[raw_chunk({"content": "so far"}), "{this is not json"])

    with pytest.raises(LLMStreamError, match="malformed chunk"):
        await collect(config)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "bad", "retry-after": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    from meshsite_client.llm.stream import _parse_retry_after

    assert _parse_retry_after(headers) == seconds
