"""The `openai` client pointed at the proxy: answers as from the upstream, usage recorded and priced
with the caller's attribution and trace."""

from decimal import Decimal

import httpx
import openai
import pytest

from observability.models import UsageRecord
from tests.support.fake_openai import ToolCall

from .conftest import UPSTREAM_KEY, wait_for_usage

pytestmark = [pytest.mark.e2e]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_completion_is_passed_back_and_its_usage_priced_and_charged_to_the_key(
    base_url, upstream, api_key, project, prices
):
    upstream.reply("Hello from upstream", usage=(1200, 300), cached_tokens=200)
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="acme-chat", messages=[{"role": "user", "content": "hi"}], extra_headers={"traceparent": TRACEPARENT}
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from upstream"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1200, 300)
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-upstream-request-id"].startswith("req_fake_")
    seen = upstream.last_request
    # the upstream gets the proxy's key, never the caller's, and the caller's trace with the proxy's span
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert api_key not in str(seen.headers)
    assert seen.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert seen.headers["traceparent"] != TRACEPARENT
    assert seen.body == {"model": "acme-chat", "messages": [{"role": "user", "content": "hi"}]}

    [record] = wait_for_usage(project=project)
    assert (record.kind, record.model, record.room_id, record.identity, record.agent) == (
        "llm",
        "acme-chat",
        None,
        "api-key:tests",
        "",
    )
    assert (record.input_tokens, record.output_tokens, record.cached_tokens) == (1200, 300, 200)
    # (1000 * 2.50 + 200 * 1.25 + 300 * 10.00) / 1e6
    assert (record.priced, record.cost) == (True, Decimal("0.00575"))
    assert record.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert record.span_id == seen.headers["traceparent"].split("-")[2]
    assert record.metadata["request_id"] == raw.headers["x-request-id"]
    assert record.metadata["parent_span_id"] == "00f067aa0ba902b7"
    assert record.metadata["source"] == "proxy" and record.metadata["stream"] is False
    assert "usage_estimated" not in record.metadata


def test_a_stream_passes_through_and_its_usage_chunk_is_read_but_not_shown_unasked(
    base_url, upstream, agent_token, project, prices
):
    upstream.reply("one two three four five", usage=(40, 5))
    client = openai.OpenAI(base_url=base_url, api_key=agent_token, max_retries=0)
    chunks = list(
        client.chat.completions.create(model="acme-chat", messages=[{"role": "user", "content": "count"}], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three four five"
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk: the client did not ask
    assert upstream.last_request.include_usage  # ... but the upstream was asked for it

    [record] = wait_for_usage(project=project)
    assert (record.room.name, record.room_name, record.identity, record.agent) == (
        "lab",
        "lab",
        "researcher",
        "researcher",
    )
    assert (record.input_tokens, record.output_tokens, record.cost) == (40, 5, Decimal("0.00015"))
    assert record.metadata["stream"] is True and record.metadata["outcome"] == "completed"
    assert record.metadata["token"] == "agent"


def test_a_client_that_asks_for_the_usage_chunk_gets_it(base_url, upstream, agent_token, project, prices):
    upstream.reply("fine", usage=(10, 1), tool_calls=[ToolCall("lookup", {"q": "x"})])
    client = openai.OpenAI(base_url=base_url, api_key=agent_token, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="acme-chat",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 10
    arguments = "".join(
        call.function.arguments or "" for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []
    )
    assert arguments == '{"q": "x"}'
    [record] = wait_for_usage(project=project)
    assert (record.input_tokens, record.output_tokens) == (10, 1)


def test_embeddings_are_metered_as_embedding_usage(base_url, upstream, agent_token, project, prices):
    client = openai.OpenAI(base_url=base_url, api_key=agent_token, max_retries=0)
    result = client.embeddings.create(model="acme-embed", input=["a" * 400, "b" * 40])
    assert [len(item.embedding) for item in result.data] == [3, 3]
    assert upstream.last_request.path == "/v1/embeddings"
    [record] = wait_for_usage(project=project)
    assert (record.kind, record.model, record.input_tokens, record.output_tokens) == ("embedding", "acme-embed", 110, 0)
    assert record.cost == Decimal("0.000011")


def test_models_are_listed_from_the_upstream_and_not_metered(base_url, upstream, api_key, project):
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    assert [model.id for model in client.models.list()] == ["gpt-4o-mini", "fake-model"]
    assert not UsageRecord.objects.exists()


def test_an_unpriced_model_is_recorded_with_its_tokens_and_flagged(base_url, upstream, api_key, project):
    upstream.reply("hi", usage=(7, 3))
    openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0).chat.completions.create(
        model="mystery-model", messages=[{"role": "user", "content": "hi"}]
    )
    [record] = wait_for_usage(project=project)
    assert (record.model, record.input_tokens, record.output_tokens, record.priced) == ("mystery-model", 7, 3, False)


def test_thread_and_turn_headers_attribute_the_usage(base_url, upstream, agent_token, project):
    upstream.reply("ok", usage=(1, 1))
    response = httpx.post(
        f"{base_url}/chat/completions",
        headers={
            "Authorization": f"Bearer {agent_token}",
            "X-Meshsite-Thread-Id": "t_0123456789abcdef",
            "X-Meshsite-Turn-Id": "turn-7",
        },
        json={"model": "acme-chat", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    [record] = wait_for_usage(project=project)
    assert (record.thread_id, record.turn_id, record.trace_id) == ("t_0123456789abcdef", "turn-7", "")
