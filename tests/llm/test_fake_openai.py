"""The fake server itself: it must look like the real API to the real `openai` client."""

import json

import openai
import pytest

from tests.support.fake_openai import FakeOpenAI, ToolCall


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=fake_openai.base_url, max_retries=0)


def test_a_non_streamed_completion_parses(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_openai.reply("Sure.", tool_calls=[ToolCall("lookup", {"q": "x"}, id="call_1")], usage=(10, 5))

    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    choice = completion.choices[0]
    assert choice.message.content == "Sure."
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_1", "lookup", {"q": "x"})
    assert completion.usage is not None and completion.usage.total_tokens == 15
    assert not fake_openai.last_request.stream


def test_a_streamed_completion_parses_chunk_by_chunk(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_openai.reply("a b c")

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b c"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


def test_orphaned_tool_messages_are_refused_like_upstream(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_openai.reply("never sent")

    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "tool", "tool_call_id": "nope", "content": "x"}]
        )
    assert fake_openai.pending == 1, "a refused request uses no scripted reply"


def test_unanswered_tool_calls_are_refused_like_upstream(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}

    with pytest.raises(openai.BadRequestError, match="did not have response messages: c1"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}],
        )


def test_an_unscripted_request_gets_a_clear_500(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match="no scripted response left"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


def test_error_bodies_and_headers(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_openai.error(429, "Slow down", retry_after=2)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])

    assert caught.value.body == {
        "message": "Slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert caught.value.response.headers["retry-after"] == "2"


def test_an_expected_api_key_is_checked(fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = "sk-right"
    wrong = openai.OpenAI(api_key="sk-wrong", base_url=fake_openai.base_url, max_retries=0)

    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


def test_env_points_at_the_fake(fake_openai: FakeOpenAI) -> None:
    assert fake_openai.env() == {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-fake"}
    assert fake_openai.base_url.startswith("http://127.0.0.1:")


def test_requests_are_timed(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_openai.reply("x", delay=0.02)

    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])

    request = fake_openai.wait_for_requests(1)[0]
    assert request.first_chunk_at is not None
    assert request.first_chunk_at - request.received_at >= 0.02
