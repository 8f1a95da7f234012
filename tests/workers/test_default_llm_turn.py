"""The Worker's default `process_message`: one LLM turn (rules as the system prompt, the message as
the user prompt) with the room's toolkits as tools, run in a real Celery worker against a local
OpenAI wire-format server; its tool call goes through the room, into the ledger."""

import pytest
from meshsite_client import RoomClient, Toolkit, tool

from agents.models import WorkerMessage
from observability.models import ToolCall
from tests.support.fake_openai import ToolCall as ModelToolCall
from tests.workers.conftest import in_thread, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.asyncio]


@tool
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


async def test_the_default_worker_runs_an_llm_turn_with_room_tools(
    ws_url, mint, project, start_celery_worker, fake_openai
):
    from agents.workers import do_create_worker_service

    config = {"queue": "questions", "rules": ["Answer with the sum."], "model": "fake-model", "tool_toolkits": ["calc"]}
    await in_thread(do_create_worker_service, project, "summer", "meshsite_client.agents.Worker", config=config)
    await in_thread(start_celery_worker, env=fake_openai.env())
    fake_openai.reply(tool_calls=[ModelToolCall("calc__add", {"a": 2, "b": 3})], usage=(20, 5))
    fake_openai.reply("2 + 3 = 5", usage=(30, 6))

    async with RoomClient(ws_url("lobby"), mint("bob")) as bob:
        await bob.register_toolkit(Toolkit("calc", [add], description="arithmetic"))
        sent = await bob.invoke("queues", "send", {"queue": "questions", "body": {"prompt": "What is 2 + 3?"}})
        record = await in_thread(
            wait_until, lambda: WorkerMessage.objects.filter(message_id=sent["message_id"]).first(), 40
        )
        assert record.result == {"text": "2 + 3 = 5"}
        # the ledger is written in batches, off the routing path
        call = await in_thread(wait_until, ToolCall.objects.filter(toolkit="calc", tool="add").first, 10)
        assert (call.caller_identity, call.host_identity, call.status) == ("summer", "bob", "ok")

    first, second = fake_openai.requests
    assert first.messages[0] == {"role": "system", "content": "Rules:\n- Answer with the sum."}
    assert first.messages[1] == {"role": "user", "content": "What is 2 + 3?"}
    assert [t["function"]["name"] for t in first.tools] == ["calc__add"]
    assert second.messages[-1]["role"] == "tool" and second.messages[-1]["content"] == "5"
