"""1,000 messages from 4 producer processes, consumed by 3 consumer processes, one of them SIGKILLed
while it holds leased messages: every message is acknowledged exactly once, none is lost."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from queues.selectors import queue_stats
from tests.support import servers

from .conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "queues_test_acks"
TOTAL, PRODUCERS, VICTIM_ACKS_FIRST = 1000, 4, 100


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.queues.queue_process", *args],
        cwd=servers.ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def acks_by_n() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT n, count(*) FROM {TABLE} GROUP BY n")
        return dict(cursor.fetchall())


@pytest.mark.timeout(240)
def test_every_message_is_acked_exactly_once_when_a_consumer_is_killed(room, tmp_path):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {TABLE} (message_id varchar(24), n integer, consumer text, attempt integer)")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "meshsite.settings.test",
        "QUEUE_TEST_MARKERS": str(tmp_path),
        **servers.test_database_env(),
    }
    log = tmp_path / "processes.log"
    room_id, queue = str(room.pk), "work"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        victim = start(["consume", room_id, queue, "victim", TABLE, str(TOTAL), str(VICTIM_ACKS_FIRST)], env, log)
        consumers = [start(["consume", room_id, queue, f"c{i}", TABLE, str(TOTAL)], env, log) for i in (1, 2)]
        share = TOTAL // PRODUCERS
        producers = [start(["produce", room_id, queue, str(i * share), str(share)], env, log) for i in range(PRODUCERS)]
        processes = [victim, *consumers, *producers]

        wait_for(lambda: (tmp_path / "victim.hanging").exists() or victim.poll() is not None, timeout=120)
        assert victim.poll() is None, log.read_text()
        held = int((tmp_path / "victim.hanging").read_text())
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL

        for process in [*producers, *consumers]:
            assert process.wait(180) == 0, log.read_text()[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)

    try:
        counts = acks_by_n()
        assert sorted(counts) == list(range(TOTAL)), f"{TOTAL - len(counts)} messages never acked"
        assert set(counts.values()) == {1}, {n: c for n, c in counts.items() if c != 1}
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT consumer, count(*), max(attempt) FROM {TABLE} GROUP BY consumer")
            per_consumer = {name: (count, top) for name, count, top in cursor.fetchall()}
        assert per_consumer["victim"][0] >= VICTIM_ACKS_FIRST
        # the batch the victim held when it died was delivered again, to the survivors
        redelivered = max(per_consumer["c1"][1], per_consumer["c2"][1])
        assert held >= 1 and redelivered >= 2
        assert queue_stats(room, queue) == {"visible": 0, "in_flight": 0, "delayed": 0, "dead": 0}
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {TABLE}")
