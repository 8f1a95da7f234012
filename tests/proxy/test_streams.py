"""Streams through the proxy: chunk by chunk as the upstream sends them, never gathered first; a
stream cut short (the client left, the upstream broke, no usage chunk) is still metered, its
tokens estimated from what was streamed and flagged so."""

import itertools
import json
import time
from decimal import Decimal

import httpx
import openai
import pytest

from observability.models import Budget, Reservation
from tests.support.servers import ServerProcess

from .conftest import wait_for_usage

pytestmark = [pytest.mark.e2e]


def sse_stream(base_url: str, credential: str, body: dict):
    return httpx.stream(
        "POST",
        f"{base_url}/chat/completions",
        json={"model": "acme-chat", "messages": [{"role": "user", "content": "tell me"}], "stream": True, **body},
        headers={"Authorization": f"Bearer {credential}"},
        timeout=30,
    )


def test_chunks_arrive_in_order_and_when_the_upstream_sends_them(base_url, upstream, agent_token, project):
    pieces = ["The", " quick", " brown", " fox", " jumps", " over"]
    upstream.reply(text_chunks=pieces, chunk_delay=0.15, usage=(8, 6))
    arrivals: list[tuple[float, str]] = []
    with sse_stream(base_url, agent_token, {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"].startswith("req_")
        started = time.perf_counter()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                assert chunk["choices"], "the usage chunk was not asked for"
                content = chunk["choices"][0]["delta"].get("content")
                if content:
                    arrivals.append((time.perf_counter() - started, content))
            elif line == "data: [DONE]":
                arrivals.append((time.perf_counter() - started, "[DONE]"))
    assert [content for _, content in arrivals] == [*pieces, "[DONE]"]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(arrivals[:-1])]
    # each chunk is passed on as it comes: 150 ms apart, as sent (a buffered stream arrives at once)
    assert all(0.1 < gap < 0.4 for gap in gaps), gaps
    assert arrivals[-1][0] - arrivals[0][0] > 0.6
    [record] = wait_for_usage(project=project)
    assert (record.input_tokens, record.output_tokens, record.metadata["outcome"]) == (8, 6, "completed")


def test_a_client_that_disconnects_mid_stream_still_has_its_partial_usage_recorded(
    base_url, upstream, agent_token, project, prices
):
    Budget.objects.create(project=project, amount=Decimal("5"), period="month")
    upstream.reply(text_chunks=["alpha", " beta", " gamma", " delta"], hold_after=3, usage=(8, 4))
    seen = []
    with sse_stream(base_url, agent_token, {}) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                if content:
                    seen.append(content)
            if len(seen) == 2:
                break  # leaves the `with`: the connection is closed mid-stream
    assert seen == ["alpha", " beta"]
    [record] = wait_for_usage(project=project)
    assert record.metadata["usage_estimated"] is True
    assert record.metadata["estimate_reason"] == "client_disconnected"
    assert record.metadata["estimate_method"] == "approximate"
    # estimated: "alpha beta" at 4 characters a token; the prompt: 3 per message + "tell me" + 3
    assert (record.output_tokens, record.input_tokens) == (3, 8)
    assert record.cost == Decimal("0.00005")  # 8 * 2.50 + 3 * 10.00 per million
    assert record.reservation.status == Reservation.Status.SETTLED
    upstream.release()
    # the proxy let go of the upstream too: its next writes fail
    assert upstream.wait_done().disconnected


def test_an_upstream_that_breaks_mid_stream_ends_the_stream_with_an_error_and_is_metered(
    base_url, upstream, agent_token, project
):
    upstream.reply(text_chunks=["one", " two", " three", " four"], drop_after=3)
    client = openai.OpenAI(base_url=base_url, api_key=agent_token, max_retries=0)
    got = []
    with pytest.raises(openai.APIError, match="the upstream stream broke"):
        for chunk in client.chat.completions.create(
            model="acme-chat", messages=[{"role": "user", "content": "count"}], stream=True
        ):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "one two"
    [record] = wait_for_usage(project=project)
    assert (record.metadata["estimate_reason"], record.metadata["outcome"]) == ("upstream_broken", "upstream_broken")
    assert record.output_tokens == 2  # "one two"


def test_a_stream_without_a_usage_chunk_is_estimated(base_url, upstream, agent_token, project):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "acme-chat-local"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "a local model"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    upstream.reply(raw_chunks=chunks)
    client = openai.OpenAI(base_url=base_url, api_key=agent_token, max_retries=0)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="acme-chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert text == "a local model"
    [record] = wait_for_usage(project=project)
    assert record.metadata["estimate_reason"] == "no_usage_reported"
    assert record.output_tokens == 4  # 13 characters


def test_a_stream_cut_by_a_graceful_server_stop_is_still_recorded(proxy_server, upstream, agent_token, project):
    """SIGTERM ends the in-flight stream; its usage is written before the process exits."""
    server = ServerProcess(env=dict(proxy_server.env)).start()
    try:
        upstream.reply(text_chunks=["partial", " answer", " never", " finished"], hold_after=3)
        contents = []
        with sse_stream(f"{server.http_url}/v1", agent_token, {}) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if content:
                        contents.append(content)
                if len(contents) == 2:
                    break
            assert contents == ["partial", " answer"]
            code = server.stop()  # SIGTERM, while the stream is open
        assert code is not None and code >= 0, server.log()
    finally:
        server.kill()
        upstream.release()
    [record] = wait_for_usage(project=project)
    assert record.metadata["usage_estimated"] is True
    assert record.output_tokens == 4  # "partial answer" at 4 characters a token


def test_a_client_that_leaves_before_the_answer_still_has_the_request_recorded(
    base_url, upstream, agent_token, project
):
    """It gave up while the upstream was still working on it: the prompt may have been processed,
    so the request is recorded (499), its tokens estimated."""
    upstream.reply(text="too late", delay=2, usage=(8, 2))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{base_url}/chat/completions",
            json={"model": "acme-chat", "messages": [{"role": "user", "content": "tell me"}]},
            headers={"Authorization": f"Bearer {agent_token}"},
            timeout=httpx.Timeout(30, read=0.5),
        )  # the client's connection is closed as it raises
    [record] = wait_for_usage(project=project)
    assert (record.metadata["status"], record.metadata["estimate_reason"]) == (
        499,
        "client_disconnected_before_response",
    )
    assert (record.input_tokens, record.output_tokens, record.metadata["usage_estimated"]) == (8, 0, True)
