"""Worker pick-up latency (issue 10's figure; target p50 ≤ 50 ms): a participant sends a message to
a Worker's queue (`queues.send` over its WebSocket) → the Worker's `process_message` starts, in a
Celery worker on Redis. Baseline, same broker, same Celery worker, same run: a bare Celery task
(`app.task`, acks late) sent with `send_task` → the task body starts.

Every part runs in its own process: a web node (`manage.py serve`), one Celery worker
(`celery -A meshsite worker --concurrency 1`, the Worker's default of one message at a time), and
this script, the sender. Both paths stamp `time.time()` as the first thing their code does and push
it to a Redis list; the sender takes the time just before it sends and waits for the stamp before
sending the next one (one message in flight: pick-up latency, not queueing). Blocks of the two
paths alternate so that load from elsewhere on the machine hits both alike. The first messages of
each path are a warm-up (the Worker joins its room on its first message and stays there).

    .venv/bin/python bench/worker.py [--messages 300] [--database-url postgres://…/meshsite_bench_worker]
        [--redis-url redis://127.0.0.1:6379/15]

The database is created if missing and migrated.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Any

from meshsite_client.agents import Worker, WorkerMessage

STAMPS = os.environ.get("BENCH_STAMPS_KEY", "bench-worker:stamps")


def stamp(kind: str, key: str, sent_at: str = "") -> None:
    started = time.time()
    _redis_client().rpush(STAMPS, json.dumps({"kind": kind, "key": key, "t": started, "sent_at": sent_at}))


_client: Any = None


def _redis_client() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _client


class Stamp(Worker):
    """Stamps the moment `process_message` starts."""

    name = "stamp"
    queue = "bench"

    async def process_message(self, message: WorkerMessage) -> Any:
        stamp("worker", str(message.body["key"]), message.sent_at)
        return None


if __name__ != "__main__" and os.environ.get("BENCH_WORKER_TASKS") == "1":
    # Imported by the Celery worker (`-I worker`): the bare baseline task.
    from meshsite.celery import app

    @app.task(name="bench.bare_stamp", acks_late=True, reject_on_worker_lost=True)
    def bare_stamp(key: str) -> None:
        stamp("bare", key)


if __name__ == "__main__":
    import argparse
    import asyncio
    import statistics
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    ROOT = Path(__file__).resolve().parents[1]
    BENCH = Path(__file__).resolve().parent
    sys.path.insert(0, str(ROOT))

    def free_port() -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def prepare(database_url: str, env: dict[str, str]) -> None:
        import psycopg

        base, _, name = database_url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                admin.execute(f'CREATE DATABASE "{name}"')
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(url, timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the web node did not start")

    def wait_log(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if text in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise SystemExit(f"celery worker not ready:\n{log.read_text(errors='replace')[-3000:]}")

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def wait_idle() -> None:
        """Until the Worker has acked its message and released its slot: pick-up latency of an
        idle Worker, not the tail of the previous message's work."""
        from agents.models import WorkerSlot

        deadline = time.monotonic() + 30
        while WorkerSlot.objects.exclude(holder="").exists():
            if time.monotonic() > deadline:
                raise SystemExit("the Worker did not become idle within 30 s")
            time.sleep(0.002)

    async def measure(port: int, messages: int, block: int) -> dict[str, list[float]]:
        from meshsite_client import RoomClient

        from meshsite.celery import app
        from rooms.tokens import mint_token

        client = _redis_client()
        client.delete(STAMPS)
        token, _ = mint_token(project="bench", room="bench", identity="sender", role="user")
        latencies: dict[str, list[float]] = {"worker": [], "bare": [], "postgres": [], "send": [], "from_do_send": []}
        async with RoomClient(f"ws://127.0.0.1:{port}/rooms/bench/ws", token) as sender:

            async def once(kind: str, n: int) -> float:
                key = f"{kind}-{n}"
                sent = time.time()
                if kind == "worker":
                    await sender.invoke("queues", "send", {"queue": "bench", "body": {"key": key}})
                    latencies["send"].append(time.time() - sent)
                else:
                    await asyncio.to_thread(app.send_task, "bench.bare_stamp", (key,))
                popped = await asyncio.to_thread(client.blpop, [STAMPS], 30)
                if popped is None:
                    raise SystemExit(f"no stamp for {key} within 30 s")
                record = json.loads(popped[1])
                assert record["key"] == key, record
                if kind == "worker":
                    # the server's own send time (QueueMessage.sent_at, taken in do_send): pick-up
                    # from the moment the web node handled the send, without the client's hop
                    server_sent = datetime.fromisoformat(record["sent_at"]).timestamp()
                    latencies["from_do_send"].append(float(record["t"]) - server_sent)
                    await asyncio.to_thread(wait_idle)
                await asyncio.sleep(0.02)  # both paths: the next message finds its worker idle
                return float(record["t"]) - sent

            for n in range(10):  # warm-up: the Worker joins its room, connections open
                await once("worker", -n - 1)
                await once("bare", -n - 1)
            for values in latencies.values():
                values.clear()
            import psycopg

            database = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)

            def round_trip() -> float:
                started = time.perf_counter()
                database.execute("SELECT 1").fetchone()
                return time.perf_counter() - started

            n = 0
            while n < messages:
                for kind in ("bare", "worker"):
                    for i in range(block):
                        latencies[kind].append(await once(kind, n + i))
                for _ in range(block):  # context: what one database round trip costs right now
                    latencies["postgres"].append(await asyncio.to_thread(round_trip))
                    await asyncio.sleep(0.02)
                n += block
            database.close()
        return latencies

    def main() -> None:
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--messages", type=int, default=300)
        parser.add_argument("--block", type=int, default=25)
        parser.add_argument(
            "--database-url",
            default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/meshsite_bench_worker"),
        )
        parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
        options = parser.parse_args()
        prefix = f"bench-worker-{os.getpid()}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.local",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-secret-key-not-for-production-0123456789"),
            "MESHSITE_TOKEN_SECRET": "bench-token-secret-bench-token-secret",
            "DATABASE_URL": options.database_url,
            "REDIS_URL": options.redis_url,
            "MESHSITE_REDIS_PREFIX": prefix,
            "MESHSITE_LOG_LEVEL": "WARNING",
            "MESHSITE_AGENT_PATHS": str(BENCH),
            "PYTHONPATH": str(BENCH),
            "BENCH_WORKER_TASKS": "1",
            "MESHSITE_WORKER_IDLE_SECONDS": "600",
        }
        os.environ.update({k: v for k, v in env.items() if k != "BENCH_WORKER_TASKS"})
        prepare(options.database_url, env)
        import django

        django.setup()
        from agents.models import Service
        from agents.workers import do_create_worker_service
        from rooms.actions.projects import do_create_project
        from rooms.actions.rooms import do_create_room
        from rooms.models import Project

        project = Project.objects.filter(slug="bench").first() or do_create_project("bench", "Bench")
        do_create_room(project, "bench")
        Service.objects.filter(project=project, name="stamp").delete()
        do_create_worker_service(project, "stamp", "worker.Stamp", config={"queue": "bench"})

        port = free_port()
        logs = ROOT / "var"
        logs.mkdir(exist_ok=True)
        env["MESHSITE_WORKER_URL"] = f"http://127.0.0.1:{port}"
        web = start([sys.executable, "manage.py", "serve", "--port", str(port)], env, logs / "bench-worker-web.log")
        celery_log = logs / "bench-worker-celery.log"
        celery = start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "meshsite",
                "worker",
                "-I",
                "worker",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{prefix}@%h",
            ],
            env,
            celery_log,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/api/v1/health", web)
            wait_log(celery_log, " ready.", celery)
            load_before = os.getloadavg()
            latencies = asyncio.run(measure(port, options.messages, options.block))
            load_after = os.getloadavg()
        finally:
            for process in (celery, web):
                process.terminate()
            for process in (celery, web):
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()

        print(
            f"Worker pick-up latency, {options.messages} messages per path, "
            "one at a time to an idle worker, Celery on Redis"
        )
        print(f"{'path':<44} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
        names = {
            "bare": "bare Celery task (send_task → body starts)",
            "worker": "Worker (queues.send → process_message)",
        }
        for kind in ("bare", "worker"):
            values = latencies[kind]
            print(
                f"{names[kind]:<44} {pct(values, 0.5):8.1f} {pct(values, 0.99):8.1f} "
                f"{statistics.mean(values) * 1000:8.1f}"
            )
        values = latencies["send"]
        print(
            f"{'(part) queues.send answered (web node)':<44} {pct(values, 0.5):8.1f} {pct(values, 0.99):8.1f} "
            f"{statistics.mean(values) * 1000:8.1f}"
        )
        values = latencies["from_do_send"]
        print(
            f"{'(part) do_send on the web node → started':<44} {pct(values, 0.5):8.1f} {pct(values, 0.99):8.1f} "
            f"{statistics.mean(values) * 1000:8.1f}"
        )
        values = latencies["postgres"]
        print(
            f"{'(context) one Postgres round trip, SELECT 1':<44} {pct(values, 0.5):8.1f} {pct(values, 0.99):8.1f} "
            f"{statistics.mean(values) * 1000:8.1f}"
        )
        ratio = pct(latencies["worker"], 0.5) / max(pct(latencies["bare"], 0.5), 1e-9)
        print(f"Worker p50 / bare p50: {ratio:.1f}x; target Worker p50 <= 50 ms")
        print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")

    main()
