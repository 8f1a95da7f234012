"""What a built-in tool spends lands on its call: `rag.search` and `vectors.upsert` embed with a
priced model (a local server in OpenAI's wire format), and the embedding's usage record names the
call, its tool and its trace, so the tool's cost is one `usage.summary` query, counted once in the
totals and against budgets."""

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from observability.models import Budget, ModelPrice, ToolCall, UsageRecord
from tests.observability.conftest import LONG_AGO
from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess
from tests.vectors.fake_embeddings import FakeEmbeddings

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
EMBEDDING_MODEL = "text-embedding-3-small"
PER_MILLION = Decimal("0.02")


@pytest.fixture(scope="module")
def embedding_node(django_db_setup: None, django_db_blocker: Any) -> Iterator[tuple[ServerProcess, FakeEmbeddings]]:
    """A web node that embeds with the fake OpenAI-compatible server."""
    with FakeEmbeddings(api_key="sk-embed") as fake, django_db_blocker.unblock():
        env = {
            "MESHSITE_EMBEDDINGS": "openai",
            "MESHSITE_EMBEDDING_BASE_URL": fake.base_url,
            "MESHSITE_EMBEDDING_API_KEY": "sk-embed",
            "MESHSITE_EMBEDDING_MODEL": EMBEDDING_MODEL,
        }
        process = ServerProcess(redis_url=settings.REDIS_URL or None, env=env).start()
        try:
            yield process, fake
        finally:
            process.stop()


def db(function: Callable[..., Any], *args: Any) -> Any:
    return asyncio.to_thread(function, *args)


def built_in_calls(project: Any, count: int) -> list[ToolCall]:
    """The rag and vectors ledger rows, once the node has written `count` of them (in batches)."""
    deadline = time.monotonic() + 5
    while True:
        rows = list(ToolCall.objects.filter(project=project, toolkit__in=["rag", "vectors"]))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def embedding_price() -> None:
    ModelPrice.objects.create(
        model=EMBEDDING_MODEL, kind="embedding", input_per_million=PER_MILLION, effective_from=LONG_AGO
    )


async def test_a_built_in_tools_embedding_is_its_calls_cost_counted_once(embedding_node, mint, project):
    node, fake = embedding_node
    await db(embedding_price)
    await db(lambda: Budget.objects.create(project=project, amount=Decimal("10"), period="day"))
    token = mint("assistant", role="agent", agent="assistant")
    async with await RawPeer.connect(node.ws_url("lobby"), token) as agent:
        chunks = [{"text": "red apples grow on trees"}, {"text": "the sky is blue today"}]
        upserted = await agent.invoke(
            "vectors", "upsert", {"source": "notes", "chunks": chunks}, _meta={"traceparent": TRACEPARENT}
        )
        assert upserted["result"]["output"] == {"upserted": 2}, upserted
        found = await agent.invoke("rag", "search", {"query": "blue sky"}, _meta={"traceparent": TRACEPARENT})
        assert found["result"]["output"]["results"][0]["text"] == "the sky is blue today", found

        usage = await db(lambda: list(UsageRecord.objects.filter(project=project).order_by("created_at")))
        assert [(u.tool, u.input_tokens) for u in usage] == [("vectors.upsert", 10), ("rag.search", 2)]
        assert [u.cost for u in usage] == [PER_MILLION * 10 / 1_000_000, PER_MILLION * 2 / 1_000_000]
        assert {u.trace_id for u in usage} == {TRACEPARENT[3:35]}  # in the caller's trace
        search_usage = usage[1]
        calls = await db(built_in_calls, project, 2)
        call = {f"{c.toolkit}.{c.tool}": c for c in calls}["rag.search"]
        # the usage names its call's ledger row and span; the row itself carries no second copy of the cost
        assert (search_usage.call_id, search_usage.span_id) == (call.call_id, call.span_id)
        assert call.cost == 0

        # one query: what did rag.search cost, what did this call cost
        summary = (await agent.invoke("usage", "summary", {"group_by": "tool"}))["result"]["output"]
        groups = {g["tool"]: g for g in summary["groups"]}
        assert (groups["rag.search"]["cost"], groups["rag.search"]["records"], groups["rag.search"]["calls"]) == (
            "0.00000004",
            1,
            1,
        )
        assert groups["vectors.upsert"]["cost"] == groups["vectors.upsert"]["usage_cost"] == "0.0000002"
        assert summary["total"]["cost"] == "0.00000024"  # each embedding once: not again on its call
        by_call = (await agent.invoke("usage", "summary", {"call_id": call.call_id}))["result"]["output"]
        assert (by_call["total"]["cost"], by_call["total"]["records"], by_call["total"]["calls"]) == (
            "0.00000004",
            1,
            1,
        )
        by_toolkit = (await agent.invoke("usage", "summary", {"tool": "rag"}))["result"]["output"]
        assert by_toolkit["total"]["cost"] == "0.00000004"
        by_trace = (await agent.invoke("usage", "summary", {"trace_id": TRACEPARENT[3:35]}))["result"]["output"]
        assert by_trace["total"]["cost"] == "0.00000024"

        # budgets count it once too
        held = (await agent.invoke("usage", "reserve", {"amount": "1"}))["result"]["output"]
        assert held["budgets"][0]["spent"] == "0.00000024"
    assert len(fake.requests) == 2
