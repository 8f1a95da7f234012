"""Usage reported by an agent is attributed by the server: who, where, which trace."""

import asyncio

import pytest
from meshsite_client.protocol import ErrorCode

from observability.models import UsageRecord
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_an_llm_usage_record_is_attributed_to_the_agent_room_thread_and_trace(ws_url, mint, project):
    async with await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent:
        usage = {"kind": "llm", "model": "gpt-x", "input_tokens": 120, "output_tokens": 30, "cached_tokens": 20}
        response = await agent.invoke(
            "usage",
            "record",
            {**usage, "thread_id": "t_0123456789abcdef", "turn_id": "turn-1"},
            _meta={"traceparent": TRACEPARENT},
        )
        assert response["result"]["output"]["usage"]["agent"] == "assistant"
        bad = await agent.invoke("usage", "record", {**usage, "cached_tokens": 500})
        assert bad["error"]["code"] == ErrorCode.INVALID_PARAMS
    [record] = await asyncio.to_thread(lambda: list(UsageRecord.objects.filter(project=project)))
    assert (record.identity, record.agent, record.room_name, record.model) == (
        "assistant",
        "assistant",
        "lobby",
        "gpt-x",
    )
    assert (record.input_tokens, record.output_tokens, record.cached_tokens) == (120, 30, 20)
    assert (record.thread_id, record.turn_id, record.trace_id) == ("t_0123456789abcdef", "turn-1", TRACEPARENT[3:35])
