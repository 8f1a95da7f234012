"""The proxy's parts, in process: settings, estimates, usage objects, and how a stream is cut into
events and metered."""

import asyncio
import json
from decimal import Decimal
from types import SimpleNamespace
from typing import ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from meshsite.settings.proxy import proxy_upstreams, proxy_url
from observability.pricing import Amounts
from observability.proxy import metering
from observability.proxy.core import Relay
from observability.proxy.errors import ProxyError
from observability.proxy.upstream import upstream_for


def test_upstream_settings_are_checked_at_start_up():
    assert proxy_url("") == ""
    assert proxy_url("https://api.openai.com/v1/") == "https://api.openai.com/v1"
    with pytest.raises(ImproperlyConfigured):
        proxy_url("api.openai.com")
    parsed = proxy_upstreams('{"acme": {"url": "http://x/v1/", "key": "k"}}')
    assert parsed == {"acme": {"url": "http://x/v1", "key": "k"}}
    assert proxy_upstreams('{"acme": {"url": "http://x/v1"}}') == {"acme": {"url": "http://x/v1", "key": ""}}
    for bad in ("[1]", "{", '{"acme": {"url": "ftp://x"}}', '{"acme": {"url": "http://x", "secret": 1}}'):
        with pytest.raises(ImproperlyConfigured):
            proxy_upstreams(bad)


@override_settings(MESHSITE_PROXY_UPSTREAM_URL="", MESHSITE_PROXY_UPSTREAMS={"acme": {"url": "http://a/v1", "key": ""}})
def test_a_project_without_an_upstream_is_503_and_an_override_wins():
    assert upstream_for("acme").url == "http://a/v1"
    with pytest.raises(ProxyError) as raised:
        upstream_for("other")
    assert (raised.value.status, raised.value.code) == (503, "proxy_not_configured")


@override_settings(MESHSITE_PROXY_DEFAULT_OUTPUT_TOKENS=500)
def test_the_estimate_takes_max_tokens_times_n_else_the_default():
    messages = [{"role": "user", "content": "x" * 40}]
    assert metering.estimate("chat.completions", {"model": "m", "messages": messages}) == Amounts(3 + 10 + 3, 500)
    body = {"model": "m", "messages": messages, "max_tokens": 50, "n": 3}
    assert metering.estimate("chat.completions", body).output_tokens == 150
    body = {"model": "m", "messages": messages, "max_completion_tokens": 70, "max_tokens": 50}
    assert metering.estimate("chat.completions", body).output_tokens == 70
    assert metering.estimate("embeddings", {"model": "m", "input": ["abcd" * 10, "ab"]}) == Amounts(11, 0)
    assert metering.estimate("embeddings", {"model": "m", "input": [1, 2, 3]}) == Amounts(3, 0)
    assert metering.estimate("embeddings", {"model": "m", "input": [[1, 2], [3]]}) == Amounts(3, 0)


def test_usage_objects():
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 30}}
    assert metering.usage_amounts("chat.completions", usage) == Amounts(100, 20, 30)
    assert metering.usage_amounts("embeddings", {"prompt_tokens": 9, "total_tokens": 9}) == Amounts(9)
    assert metering.usage_amounts("chat.completions", None) is None
    assert metering.usage_amounts("chat.completions", {"prompt_tokens": True}) is None
    assert metering.usage_amounts("chat.completions", {"prompt_tokens": 5, "prompt_tokens_details": None}) == Amounts(5)


def chunk(content=None, usage=None, choices=True):
    out = {"id": "c", "object": "chat.completion.chunk", "model": "m-2026"}
    out["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": None}] if choices else []
    if usage is not None:
        out["usage"] = usage
    return b"data: " + json.dumps(out, separators=(",", ":")).encode() + b"\n\n"


class FakeCall:
    endpoint = "chat.completions"


def relay(wants_usage: bool) -> Relay:
    r = object.__new__(Relay)
    r.__dict__.update(call=FakeCall(), wants_usage=wants_usage, pending=b"", passed=[], usage=None, model="")
    r.__dict__.update(error=None, finished=True, ended=False)  # nothing to meter in these tests
    return r


def test_a_relay_passes_whole_events_and_holds_a_partial_one_until_it_ends():
    r = relay(False)
    one, two = chunk("Hel"), chunk("lo")
    assert r.feed(one + two[:10]) == one
    assert r.feed(two[10:]) == two
    assert r.feed(b": keep-alive\r\n\r\n" + b"data: [DONE]") == b": keep-alive\r\n\r\n"
    assert r.pending == b"data: [DONE]"
    assert metering.streamed_text(r.passed) == "Hello"
    assert not r.ended
    assert r.feed(b"\n\n") == b"data: [DONE]\n\n"
    assert r.ended  # a client leaving now left a stream that was complete


def test_the_usage_chunk_is_read_and_dropped_unless_asked_for():
    usage = {"prompt_tokens": 12, "completion_tokens": 3}
    tail = chunk(None, usage=usage, choices=False) + b"data: [DONE]\n\n"
    unasked, asked = relay(False), relay(True)
    assert unasked.feed(chunk("a") + tail) == chunk("a") + b"data: [DONE]\n\n"
    assert asked.feed(chunk("a") + tail) == chunk("a") + tail
    assert unasked.usage == asked.usage == Amounts(12, 3)
    assert unasked.model == "m-2026"
    # usage riding on a chunk that has content (some servers) is never dropped
    mixed = relay(False)
    assert mixed.feed(chunk("b", usage=usage)) == chunk("b", usage=usage)
    assert mixed.usage == Amounts(12, 3)


def test_null_usage_on_every_chunk_is_not_parsed_as_usage():
    r = relay(False)
    event = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}\n\n'
    assert r.feed(event) == event and r.usage is None


def test_streamed_text_counts_content_refusals_and_tool_call_arguments():
    tool = {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": '{"a"'}}]}}]}
    events = [chunk("Hi "), b"data: " + json.dumps(tool).encode() + b"\n\ndata: [DONE]\n\n"]
    assert metering.streamed_text(events) == 'Hi f{"a"'


async def test_a_stream_whose_iterator_never_started_is_still_metered_and_its_upstream_closed(monkeypatch):
    """The client left between the answer's headers and its first chunk: no generator `finally`
    ever runs, so the relay meters and closes when it is dropped."""
    submitted = []
    monkeypatch.setattr(metering, "submit", lambda function, *args: submitted.append((function, args)))
    closed = asyncio.Event()

    class Upstream:  # an aiohttp.ClientResponse's part a relay uses
        status = 200
        headers: ClassVar[dict[str, str]] = {}

        def close(self) -> None:
            closed.set()

    class Call:
        endpoint = "chat.completions"

        def metered(self, gate, **options):
            return SimpleNamespace(metadata={}, amounts=None, streamed="", estimate_reason="", model="")

        def elapsed_ms(self) -> float:
            return 1.0

    stream = Relay(Call(), None, Upstream(), False).events()  # type: ignore[arg-type]
    del stream
    await asyncio.wait_for(closed.wait(), 2)
    [(function, (metered,))] = submitted
    assert function is metering.record
    assert (metered.estimate_reason, metered.metadata["outcome"]) == ("client_disconnected", "client_disconnected")


@pytest.mark.django_db(transaction=True)
def test_queued_usage_is_written_in_batches_and_none_is_lost(project):
    """Under load the writer takes every queued record it can in one transaction; each still gets
    its own priced row."""
    import threading

    from observability.budgets import Who
    from observability.models import ModelPrice, UsageRecord
    from observability.proxy.auth import Caller
    from observability.proxy.upstream import Upstream

    ModelPrice.objects.create(model="gpt-batch", kind="llm", input_per_million=1, output_per_million=2)
    who = Who(project.pk, None, "", "", "key", "")
    gate = metering.Gate(Caller(who, project.slug), Upstream("http://upstream.invalid/v1", "k"))

    def metered(index: int) -> metering.Metered:
        return metering.Metered(
            gate, metering.CHAT, {}, "gpt-batch", "", "", "", "", {"n": index}, amounts=Amounts(1_000_000, index)
        )

    batches: list[int] = []
    real_record_many = metering.record_many
    hold = threading.Event()

    def record_many(batch: list[metering.Metered]) -> None:
        batches.append(len(batch))
        real_record_many(batch)

    def first(_metered: metering.Metered) -> None:
        hold.wait(10)  # the writer is busy: what comes meanwhile queues up

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metering, "record_many", record_many)
        metering.submit(first, metered(0))
        for index in range(1, 51):
            metering.submit(metering.record, metered(index))
        hold.set()
        for _ in range(200):
            if UsageRecord.objects.filter(model="gpt-batch").count() == 50:
                break
            threading.Event().wait(0.05)
    rows = UsageRecord.objects.filter(model="gpt-batch").order_by("output_tokens")
    assert [row.metadata["n"] for row in rows] == list(range(1, 51))
    # 1M input tokens at 1 per million, index output tokens at 2 per million
    assert [row.cost for row in rows[:2]] == [Decimal("1.000002"), Decimal("1.000004")]
    assert batches and max(batches) > 1  # a lone record on an idle writer is written as it is


# --- the proxy as an ASGI application (`asgi.mount`; `manage.py serve` uses `proxy.daphne`) --------


def _asgi_call(app, path: str, bodies: list[bytes], *, leave: asyncio.Event | None = None):
    """Calls `app` with a POST to `path` whose body comes in `bodies`; after it, `receive` waits
    for `leave` (if given) and reports the client gone. Returns what the app sent."""
    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"Authorization", b"Bearer k")]}
    messages = [{"type": "http.request", "body": b, "more_body": i < len(bodies) - 1} for i, b in enumerate(bodies)]
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await (leave.wait() if leave is not None else asyncio.Event().wait())
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def call():
        await app(scope, receive, send)
        return sent

    return call()


@override_settings(MESHSITE_PROXY_MAX_REQUEST_BYTES=1024)
async def test_the_mounted_proxy_answers_its_routes_and_hands_on_the_rest(monkeypatch):
    from channels.routing import ProtocolTypeRouter

    from observability.proxy import asgi
    from observability.proxy.core import Outgoing

    seen: list[tuple[str, object]] = []

    async def handle(route, incoming):
        seen.append((route, incoming))
        return Outgoing(200, {"content-type": "application/json"}, b'{"ok": true}')

    async def django(scope, receive, send):
        seen.append(("django", scope["path"]))

    monkeypatch.setattr(asgi, "handle", handle)
    app = asgi.mount(django)
    assert asgi.mounted_in(ProtocolTypeRouter({"http": app})) and not asgi.mounted_in(
        ProtocolTypeRouter({"http": django})
    )

    sent = await _asgi_call(app, "/v1/chat/completions/", [b'{"a":', b" 1}"])
    [(route, incoming)] = seen
    assert (route, incoming.method, incoming.body, incoming.headers) == (
        "chat/completions",
        "POST",
        b'{"a": 1}',
        {"authorization": "Bearer k"},
    )
    assert sent[0]["status"] == 200 and (b"content-length", b"12") in sent[0]["headers"]
    assert sent[1] == {"type": "http.response.body", "body": b'{"ok": true}'}

    await _asgi_call(app, "/v1/other", [b""])
    assert seen[-1] == ("django", "/v1/other")

    seen.clear()
    sent = await _asgi_call(app, "/v1/embeddings", [b"x" * 1000, b"x" * 1000])  # over the limit: 413, not handled
    assert seen == [] and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_too_large"


async def test_a_client_leaving_the_mounted_proxy_before_the_answer_cancels_it(monkeypatch):
    from observability.proxy import asgi

    started, cancelled, leave = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handle(route, incoming):
        started.set()
        try:
            await asyncio.Event().wait()  # the upstream never answers
        except asyncio.CancelledError:
            cancelled.set()  # where core.forward records the request (499)
            raise

    monkeypatch.setattr(asgi, "handle", handle)
    calling = asyncio.ensure_future(_asgi_call(asgi.mount(None), "/v1/chat/completions", [b"{}"], leave=leave))
    await asyncio.wait_for(started.wait(), 2)
    leave.set()
    assert await asyncio.wait_for(calling, 2) == []  # nothing sent
    assert cancelled.is_set()
