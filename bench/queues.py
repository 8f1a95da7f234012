"""Queue throughput (send → receive → ack) through `queues.actions` on Postgres, against a bare
baseline on the same Postgres in the same run (issue 10's figure; target ≥ 0.25 x baseline).

Both sides run the same loop at the same concurrency, each worker a separate process with its own
connection: send one message, receive one, acknowledge it. The baseline is the least SQL a
durable `SKIP LOCKED` queue can be: an autocommitted `INSERT`, then one transaction of
`SELECT … FOR UPDATE SKIP LOCKED LIMIT 1` + `DELETE` (no lease, no receipt, no retries, no ORM).
Ours is `do_send` (INSERT, enqueue-on-commit signal), `do_receive` (queue settings, claim with a
lease and a fresh receipt) and `do_ack` (conditional DELETE) through Django. `ours` runs with every
`message_sent` receiver the installed apps connect (the Worker's looks up bound services on each
send); `alone` with only the queue's own. Rounds alternate baseline / ours / alone so that load
from elsewhere on the machine hits all alike.

    .venv/bin/python bench/queues.py [--database-url postgres://postgres@127.0.0.1:5432/meshsite_bench_queues]
        [--concurrency 4] [--messages 500] [--rounds 3]

The database is created if missing and migrated; its queue tables are emptied before each round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import statistics
import subprocess
import sys
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE_TABLE = "bench_bare_queue"
BODY = {"task": "resize", "image": "photos/2026/cat.jpg", "sizes": [64, 128, 512]}


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshsite.settings.local")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG records every query
    import django

    django.setup()


def only_queue_receivers() -> None:
    """Disconnects other apps' `message_sent` receivers (the Worker's), leaving the queue's own."""
    from queues.signals import message_sent

    with message_sent.lock:
        message_sent.receivers = [r for r in message_sent.receivers if r[0][0] == "queues.waiters"]
        message_sent.sender_receivers_cache.clear()


def ours(database_url: str, room_id: int, worker: int, messages: int, barrier: Barrier, out: Any) -> None:
    setup_django(database_url)
    _loop(room_id, worker, messages, barrier, out)


def ours_alone(database_url: str, room_id: int, worker: int, messages: int, barrier: Barrier, out: Any) -> None:
    setup_django(database_url)
    only_queue_receivers()
    _loop(room_id, worker, messages, barrier, out)


def _loop(room_id: int, worker: int, messages: int, barrier: Barrier, out: Any) -> None:
    from queues.actions import do_ack, do_receive, do_send

    name = "bench"
    consumer = f"bench-{worker}"
    do_receive(room=room_id, queue=name, consumer=consumer, visibility_timeout=30)  # warm up before the clock
    barrier.wait()
    started = time.perf_counter()
    done = 0
    while done < messages:
        do_send(room=room_id, queue=name, body=BODY, sent_by=consumer)
        for delivery in do_receive(room=room_id, queue=name, consumer=consumer, visibility_timeout=30):
            do_ack(room=room_id, queue=name, message_id=delivery.message_id, receipt=delivery.receipt)
            done += 1
    out.put((started, time.perf_counter(), done))


def baseline(database_url: str, room_id: int, worker: int, messages: int, barrier: Barrier, out: Any) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        body = json.dumps(BODY)
        barrier.wait()
        started = time.perf_counter()
        done = 0
        while done < messages:
            connection.execute(
                f"INSERT INTO {BASELINE_TABLE} (queue, body, visible_at) VALUES (%s, %s, now())", ["bench", body]
            )
            with connection.transaction():
                row = connection.execute(
                    f"SELECT id, body FROM {BASELINE_TABLE} WHERE queue = %s AND visible_at <= now() "
                    "ORDER BY visible_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    ["bench"],
                ).fetchone()
                if row is not None:
                    connection.execute(f"DELETE FROM {BASELINE_TABLE} WHERE id = %s", [row[0]])
                    done += 1
        out.put((started, time.perf_counter(), done))


def run(kind: str, database_url: str, room_id: int, concurrency: int, messages: int) -> float:
    """Messages per second (each sent, received and acknowledged) over all workers."""
    context = mp.get_context("spawn")
    barrier = context.Barrier(concurrency)
    out = context.Queue()
    target = {"baseline": baseline, "ours": ours, "alone": ours_alone}[kind]
    workers = [
        context.Process(target=target, args=(database_url, room_id, index, messages, barrier, out))
        for index in range(concurrency)
    ]
    for process in workers:
        process.start()
    results: list[tuple[float, float, int]] = []
    while len(results) < len(workers):
        try:
            results.append(out.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in workers if p.exitcode not in (None, 0)]
            if failed:
                for process in workers:
                    process.kill()
                raise SystemExit(f"a {kind} worker failed (exit {failed[0]})") from None
    for process in workers:
        process.join(30)
    elapsed = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    return sum(done for _, _, done in results) / elapsed


def prepare(database_url: str) -> int:
    import psycopg

    base, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "meshsite.settings.local"}
    env.setdefault("DJANGO_SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} (id bigserial PRIMARY KEY, queue varchar(120) NOT NULL, "
            "body jsonb NOT NULL, visible_at timestamptz NOT NULL)"
        )
        connection.execute(f"CREATE INDEX IF NOT EXISTS {BASELINE_TABLE}_claim ON {BASELINE_TABLE} (queue, visible_at)")
    setup_django(database_url)
    from rooms.actions.projects import do_create_project
    from rooms.actions.rooms import do_create_room
    from rooms.models import Project

    project = Project.objects.filter(slug="bench").first() or do_create_project("bench", "Bench")
    return do_create_room(project, "queues-bench").pk


def empty(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {BASELINE_TABLE}")
        connection.execute("TRUNCATE queues_queuemessage")
        connection.execute("VACUUM ANALYZE queues_queuemessage")
        connection.execute(f"VACUUM ANALYZE {BASELINE_TABLE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/meshsite_bench_queues")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--messages", type=int, default=500, help="per worker and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    room_id = prepare(args.database_url)
    rates: dict[str, list[float]] = {"baseline": [], "ours": [], "alone": []}
    print(f"{args.concurrency} workers x {args.messages} messages, {args.rounds} rounds; load {os.getloadavg()}")
    for round_number in range(1, args.rounds + 1):
        for kind in ("baseline", "ours", "alone"):
            empty(args.database_url)
            rate = run(kind, args.database_url, room_id, args.concurrency, args.messages)
            rates[kind].append(rate)
            print(f"round {round_number} {kind:>8}: {rate:8.0f} messages/s (send → receive → ack)", flush=True)
    base, mine, alone = (statistics.median(rates[kind]) for kind in ("baseline", "ours", "alone"))
    print(f"median baseline (raw INSERT + SELECT … FOR UPDATE SKIP LOCKED + DELETE): {base:.0f} messages/s")
    print(f"median queues.actions, every message_sent receiver connected:           {mine:.0f} messages/s")
    print(f"median queues.actions, only the queue's own receiver (no Worker lookup): {alone:.0f} messages/s")
    print(f"ratio: {mine / base:.2f} x baseline with receivers, {alone / base:.2f} x alone (target ≥ 0.25)")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
