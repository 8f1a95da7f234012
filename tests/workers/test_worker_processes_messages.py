"""A Worker service processes what a participant sends to its queue, as a participant of the room:
a real daphne server, a real Celery worker process on Redis, Postgres."""

import pytest
from meshsite_client import RoomClient

from agents.models import TaskStat, WorkerMessage
from observability.models import ToolCall
from queues.models import QueueMessage
from tests.workers.conftest import create_worker, in_thread, next_event, read_events, wait_until, worker_state

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.asyncio]


async def test_it_processes_a_message_sent_by_a_participant(ws_url, mint, project, celery_worker, events):
    await in_thread(create_worker, project, "recorder", "Recorder", queue="jobs")
    async with RoomClient(ws_url("lobby"), mint("bob")) as bob:
        joined = bob.events("participant.joined", "participant.updated", "messaging.message")
        sent = await bob.invoke("queues", "send", {"queue": "jobs", "body": {"n": 1, "log": str(events), "sleep": 1}})

        # while it works, the Worker is in the room and says so in its attributes
        working = await next_event(joined, lambda e: worker_state(e, "recorder") == "working")
        worker = working.params["participant"]
        assert worker["role"] == "agent"
        assert worker["attributes"]["worker"]["message_id"] == sent["message_id"]
        assert worker["attributes"]["agent"]["kind"] == "worker"
        done = await next_event(joined, lambda e: e.method == "messaging.message")
        assert done.params["message"] == {"message_id": sent["message_id"], "n": 1}

    record = await in_thread(
        wait_until, lambda: WorkerMessage.objects.filter(message_id=sent["message_id"]).first(), 30, "the result row"
    )
    assert (record.queue, record.attempt, record.result) == ("jobs", 1, {"n": 1, "attempt": 1})
    assert not await in_thread(QueueMessage.objects.filter(pk=sent["message_id"]).exists)
    assert [e["event"] for e in read_events(events)] == ["start", "end"]
    # its tool call went through the router, into the ledger, as the Worker's
    call = await in_thread(
        wait_until,
        lambda: ToolCall.objects.filter(caller_identity="recorder", toolkit="messaging").first(),
        10,
        "the ledger row",
    )
    assert (call.tool, call.caller_agent, call.status) == ("broadcast", "recorder", "ok")
    # and the task decorator counted the drain
    stat = await in_thread(wait_until, lambda: TaskStat.objects.filter(name="agents.worker_drain").first())
    assert stat.runs >= 1
