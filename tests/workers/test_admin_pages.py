"""The admin shows each Worker's queue depths and busy slots, Celery workers' health and task stats."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from agents.models import CeleryWorkerBeat, TaskStat, WorkerSlot
from agents.tasks import do_beat
from queues.actions import do_receive, do_send
from rooms.models import Room
from tests.workers.conftest import create_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_workers_page_shows_queue_depths_and_busy_slots(admin_client, project):
    lobby = Room.objects.create(project=project, name="lobby")
    for n in range(3):
        do_send(room=lobby, queue="jobs", body={"n": n}, sent_by="alice")
    do_receive(room=lobby, queue="jobs", consumer="someone")
    # bound after the sends: no drain runs in this test (no web node for its Worker to join)
    worker = create_worker(project, "recorder", "Recorder", queue="jobs", concurrency=2)
    WorkerSlot.objects.create(
        service=worker, room=lobby, slot=0, holder="h", lease_until=timezone.now() + timedelta(seconds=30)
    )

    page = admin_client.get("/admin/agents/workerservice/").content.decode()
    assert "recorder" in page
    assert "lobby: 2/1/0/0" in page  # visible / in flight / delayed / dead
    assert '<td class="field-busy_slots">1</td>' in page


def test_the_health_page_tells_alive_silent_and_stopped_workers_apart(admin_client):
    started = timezone.now() - timedelta(minutes=5)
    do_beat("celery@alive", started)
    do_beat("celery@stopped", started, stopped=True)
    CeleryWorkerBeat.objects.create(hostname="celery@killed", started_at=started, beat_at=started)
    page = admin_client.get("/admin/agents/celeryworkerbeat/").content.decode()
    for hostname in ("alive", "stopped", "killed"):
        assert f"celery@{hostname}" in page
    for health in ("alive", "stopped", "silent (killed or stuck?)"):
        assert f'<td class="field-health">{health}</td>' in page


def test_the_task_stats_page_lists_runs_and_failures(admin_client):
    TaskStat.objects.create(name="agents.worker_drain", runs=4, failures=1, total_seconds=2.0, last_error="Boom: x")
    page = admin_client.get("/admin/agents/taskstat/").content.decode()
    assert "agents.worker_drain" in page and "0.500" in page and "Boom: x" in page
