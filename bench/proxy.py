"""Metering proxy overhead: the same local OpenAI wire-format upstream called through Meshsite's
`/v1` proxy and directly, in one run (issue 9's figures).

Every part runs in its own process: the upstream (`tests.support.fake_openai`, answering every
request), two Meshsite servers (`manage.py serve`: SQLite embedded default, or `--database-url` for
Postgres), and this script as the client (`httpx`, the `openai` SDK's transport). One server
serves the proxy as `meshsite.asgi` wires it, mounted ahead of Django (`proxy/mounted`); the other
through Django's URLs (`proxy/django`, via bench/proxy_through_django_settings.py). The proxy does
its full work on every request: authenticates
the caller (a credential seen in the last MESHSITE_PROXY_CACHE_SECONDS is not looked up again),
looks for budgets (with `--budget`, there is one and every request reserves, then settles),
forwards, and records priced usage.

Measured, direct and through each proxy alternating in blocks so machine load hits all alike:
  - non-streaming latency at concurrency 1 and 16: p50 and p95 of each, and the added latency
    (proxy percentile - direct percentile);
  - streaming time to first chunk (request sent → first content chunk read) at concurrency 1;
  - throughput at concurrency 16 (requests per second, proxy / direct).
Plus the server's CPU per proxied request and the load average, since the machine may be shared.

    .venv/bin/python bench/proxy.py [--requests 2000] [--database-url postgres://…/scratch] [--budget]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay import Meshsite, cpu_seconds  # noqa: E402

TEXT = "Hello there, this is the answer"
MODEL = "gpt-4o-mini"

UPSTREAM = """
import sys
from tests.support.fake_openai import FakeOpenAI, Reply
fake = FakeOpenAI(validate=False, api_key="sk-bench-upstream").start()
fake._next_scripted = lambda: Reply(sys.argv[1], usage=(12, 8))
fake._record = lambda request: None  # keep nothing: the run makes tens of thousands of requests
print(fake.base_url, flush=True)
sys.stdin.read()
fake.stop()
"""

# The proxy writes a request's usage up to 50 ms after its answer (metering.WRITE_DELAY): a
# server's CPU is read this long after its block, so that writing is counted with the block.
SETTLE_SECONDS = 0.2

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 64}


class Upstream:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", UPSTREAM, TEXT], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Target:
    name: str
    base_url: str
    key: str
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.key}"},
            # the upstream closes connections idle for 30 s; a slow phase of another target lasts longer
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=5),
            timeout=30,
        )

    async def call(self) -> float:
        started = time.perf_counter()
        try:
            response = await self.client.post("/chat/completions", json=BODY)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"{self.name}: {exc!r} after {time.perf_counter() - started:.3f}s") from exc
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{self.name}: {response.status_code} {response.text[:300]}")
        return elapsed

    async def refused(self) -> float:
        """A request the proxy answers itself (401: no upstream, no database): its floor."""
        started = time.perf_counter()
        response = await self.client.post("/chat/completions", json=BODY, headers={"Authorization": "Basic eA=="})
        elapsed = time.perf_counter() - started
        if response.status_code != 401:
            raise RuntimeError(f"{self.name}: {response.status_code} {response.text[:300]}")
        return elapsed

    async def first_chunk(self) -> float:
        """Request sent → the first content chunk read; then the rest of the stream is read."""
        started = time.perf_counter()
        first = None
        async with self.client.stream("POST", "/chat/completions", json={**BODY, "stream": True}) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{self.name}: {response.status_code} {(await response.aread())[:300]!r}")
            async for line in response.aiter_lines():
                content = line.startswith("data: {") and '"content":"' in line and '"content":""' not in line
                if first is None and content:
                    first = time.perf_counter() - started
        assert first is not None
        return first


async def run(
    target: Target, requests: int, concurrency: int, streaming: bool = False, refused: bool = False
) -> tuple[list[float], float]:
    """`requests` calls by `concurrency` workers: (latencies, wall seconds)."""
    latencies: list[float] = []
    remaining = requests
    call = target.refused if refused else target.first_chunk if streaming else target.call

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            latencies.append(await call())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


@dataclass
class Phase:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # server CPU seconds during a proxy's blocks
    # this process's CPU seconds during each target's blocks: the client's own cost, which at
    # concurrency 16 can fill a core by itself (then it, not the server, sets the pace)
    client_cpu: dict[str, float] = field(default_factory=dict)

    def rate(self, name: str) -> float:
        return len(self.latencies[name]) / self.seconds[name]


async def measure(
    targets: list[Target], requests: int, concurrency: int, blocks: int, pids: dict[str, list[int]], streaming=False
) -> Phase:
    phase = Phase()
    per_block = max(1, requests // blocks)
    for block in range(blocks):
        # rotate the order, so none always follows another's leftover work
        shift = block % len(targets)
        for target in targets[shift:] + targets[:shift]:
            own = pids.get(target.name, [])
            cpu_before = cpu_seconds(own) if own else 0.0
            client_before = time.process_time()
            latencies, seconds = await run(target, per_block, concurrency, streaming)
            phase.client_cpu[target.name] = phase.client_cpu.get(target.name, 0.0) + time.process_time() - client_before
            if own:
                await asyncio.sleep(SETTLE_SECONDS)  # the block's last usage records are written
                phase.cpu[target.name] = phase.cpu.get(target.name, 0.0) + cpu_seconds(own) - cpu_before
            phase.latencies.setdefault(target.name, []).extend(latencies)
            phase.seconds[target.name] = phase.seconds.get(target.name, 0.0) + seconds
    return phase


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="per target and measurement")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=10, help="alternating direct/proxy blocks per measurement")
    parser.add_argument("--database-url", default="", help="a scratch Postgres database (migrated); default SQLite")
    parser.add_argument("--budget", action="store_true", help="a project budget, so every request reserves")
    parser.add_argument("--token", action="store_true", help="authenticate with an agent token, not an API key")
    args = parser.parse_args()

    load_before = os.getloadavg()
    upstream = Upstream()
    with tempfile.TemporaryDirectory(prefix="meshsite-bench-proxy-") as var:
        servers = {"proxy/django": Meshsite(Path(var), None), "proxy/mounted": Meshsite(Path(var), None)}
        for meshsite in servers.values():
            meshsite.env.update(
                {"MESHSITE_PROXY_UPSTREAM_URL": upstream.base_url, "MESHSITE_PROXY_UPSTREAM_KEY": "sk-bench-upstream"}
            )
            if args.database_url:
                meshsite.env["DATABASE_URL"] = args.database_url
        servers["proxy/django"].env.update(
            {
                "DJANGO_SETTINGS_MODULE": "proxy_through_django_settings",
                "PYTHONPATH": str(Path(__file__).resolve().parent),
            }
        )
        meshsite = servers["proxy/django"]
        try:
            meshsite.prepare()
            setup = (
                "from decimal import Decimal\n"
                "from observability.models import Budget, Reservation, UsageRecord\n"
                "from rooms.models import Project\n"
                "project = Project.objects.get(slug='bench')\n"
                "UsageRecord.objects.filter(project=project).delete()\n"
                "Reservation.objects.filter(project=project).delete()\n"
                "Budget.objects.filter(project=project).delete()\n"
            )
            if args.budget:
                setup += "Budget.objects.create(project=project, amount=Decimal('1000000'), period='month')\n"
            meshsite.manage("shell", "-v0", "-c", setup)
            if args.token:
                key = meshsite.manage(
                    "mesh", "token", "--project", "bench", "--room", "proxy", "--identity", "bench-agent",
                    "--role", "agent", "--agent", "bench-agent", "--ttl", "86400",
                )  # fmt: skip
            else:
                key = meshsite.manage("mesh", "create-api-key", "--project", "bench", "--name", "bench")
            targets = [Target("direct", upstream.base_url, "sk-bench-upstream")]
            for name, server in servers.items():
                targets.append(Target(name, f"http://127.0.0.1:{server.serve()}/v1", key))
            pids = {name: server.pids for name, server in servers.items()}
            for target in targets:  # warm-up: connections, caches, the first price lookups
                await run(target, args.warmup, 16)
                await run(target, args.warmup // 4, 1, streaming=True)
            one = await measure(targets, args.requests, 1, args.blocks, pids)
            sixteen = await measure(targets, args.requests, 16, args.blocks, pids)
            ttfc = await measure(targets, args.requests // 2, 1, args.blocks, pids, streaming=True)
            floor = {}
            for target in targets[1:]:
                floor[target.name], _ = await run(target, args.requests // 4, 1, refused=True)
            phases = (one, sixteen, ttfc)
            proxied = sum(
                args.warmup + args.warmup // 4 + sum(len(p.latencies[name]) for p in phases) for name in servers
            )
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                recorded = int(
                    meshsite.manage(
                        "shell",
                        "-v0",
                        "-c",
                        "from observability.models import UsageRecord;"
                        "print(UsageRecord.objects.filter(project__slug='bench').count())",
                    ).split()[-1]
                )
                if recorded >= proxied:
                    break
                time.sleep(0.5)
            for target in targets:
                await target.client.aclose()
        finally:
            for server in servers.values():
                server.stop()
            upstream.stop()
    load_after = os.getloadavg()

    database = "Postgres" if args.database_url else "SQLite (embedded default)"
    auth = "agent token" if args.token else "project API key"
    lines = [
        f"Metering proxy overhead vs the same upstream called directly, {args.requests} requests per target and "
        f"measurement ({args.requests // 2} for time to first chunk) after {args.warmup} warm-up; {database}; "
        f"{auth}; {'a budget (reserve + settle per request)' if args.budget else 'no budget'}; milliseconds",
        "| measurement | path | p50 | p95 | added p50 | added p95 |",
        "|---|---|---|---|---|---|",
    ]
    for label, phase in (
        ("non-streaming, concurrency 1", one),
        ("non-streaming, concurrency 16", sixteen),
        ("streaming, time to first chunk, concurrency 1", ttfc),
    ):
        d50, d95 = pct(phase.latencies["direct"], 0.5), pct(phase.latencies["direct"], 0.95)
        lines.append(f"| {label} | direct | {d50:.2f} | {d95:.2f} | | |")
        for name in servers:
            p50, p95 = pct(phase.latencies[name], 0.5), pct(phase.latencies[name], 0.95)
            lines.append(f"| | {name} | {p50:.2f} | {p95:.2f} | {p50 - d50:+.2f} | {p95 - d95:+.2f} |")
    lines.append("")
    lines.append(
        "floor: a request the proxy refuses itself (401, no upstream, no database), concurrency 1: "
        + ", ".join(f"{name} p50 {pct(floor[name], 0.5):.2f}" for name in servers)
    )
    lines.append(f"throughput at concurrency 16: direct {sixteen.rate('direct'):.0f}/s")
    lines.append(
        "bench client CPU per request at concurrency 16 (one core is 1000 / rate): "
        + ", ".join(
            f"{name} {1000 * sixteen.client_cpu[name] / len(sixteen.latencies[name]):.2f} ms"
            for name in ("direct", *servers)
        )
    )
    for name in servers:
        ratio = sixteen.rate(name) / sixteen.rate("direct")
        cpu_ms = 1000 * sum(p.cpu[name] for p in phases) / sum(len(p.latencies[name]) for p in phases)
        lines.append(
            f"  {name}: {sixteen.rate(name):.0f}/s = {ratio:.2f}x direct; server CPU {cpu_ms:.2f} ms per request "
            "(incl. recording its usage)"
        )
    lines.append(f"usage records written: {recorded} of {proxied} proxied requests")
    lines.append(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
