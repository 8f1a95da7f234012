"""The embedded default (no broker: CELERY_TASK_ALWAYS_EAGER): the web process itself runs the same
drain task on a background thread, and its Worker joins that same server over a WebSocket without
the server's event loop or database thread waiting for it."""

from collections.abc import Iterator

import pytest
from meshsite_client import RoomClient

from agents.models import CeleryWorkerBeat, WorkerMessage
from tests.support.servers import ServerProcess
from tests.workers.conftest import create_worker, in_thread, next_event, read_events, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


@pytest.fixture
def embedded(django_db_setup: None, django_db_blocker) -> Iterator[ServerProcess]:
    with django_db_blocker.unblock():
        server = ServerProcess(
            redis_url=None, env={"MESHSITE_WORKER_SWEEP_SECONDS": "0.5", "MESHSITE_WORKER_IDLE_SECONDS": "1"}
        ).start()
    yield server
    server.stop()


async def test_the_web_process_runs_workers_in_process_without_a_broker(embedded, mint, project, events):
    await in_thread(create_worker, project, "recorder", "Recorder", queue="jobs")
    async with RoomClient(embedded.ws_url("lobby"), mint("bob")) as bob:
        seen = bob.events("messaging.message")
        sent = [
            await bob.invoke("queues", "send", {"queue": "jobs", "body": {"n": n, "sleep": 0.2, "log": str(events)}})
            for n in range(3)
        ]
        for n in range(3):
            done = await next_event(seen, lambda e: e.method == "messaging.message")
            assert done.params["message"]["n"] == n
        # the server keeps serving while its background thread works
        assert (await bob.invoke("participants", "list"))["participants"]

    def all_three() -> list[WorkerMessage] | None:
        rows = list(WorkerMessage.objects.order_by("finished_at"))
        return rows if len(rows) == 3 else None

    rows = await in_thread(wait_until, all_three)
    assert [r.message_id for r in rows] == [s["message_id"] for s in sent]
    assert [e["n"] for e in read_events(events) if e["event"] == "start"] == [0, 1, 2]
    beat = await in_thread(
        wait_until, lambda: CeleryWorkerBeat.objects.filter(hostname__startswith="in-process@").first()
    )
    assert beat.stopped_at is None
