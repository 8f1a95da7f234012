"""Relay benchmark: caller A invokes a tool hosted by participant B, through Meshsite and through a
bare relay written with the `websockets` library alone (the physical-limit proxy), in one run.

    .venv/bin/python bench/relay.py [--calls 4000] [--rounds 3] [--setups single,redis]
        [--baseline process|in-loop|both]

Baseline: by default the bare relay runs in its own process (this script started with
--bare-relay-port), on its own port, speaking the same frames, as a real relay would; `in-loop` runs
it in the bench client's event loop instead (the old baseline: client and relay share one core, so
it is several times slower and flatters every ratio); `both` measures both in one run.

Set-ups: `single` is one daphne process on the embedded default (SQLite, in-memory layer; any
DATABASE_URL is ignored); `redis` puts caller and host on two daphne processes sharing Redis
(BENCH_REDIS_URL, else REDIS_URL, else redis://127.0.0.1:6379/15; channel prefix
MESHSITE_REDIS_PREFIX, default meshsite-bench) and the database (DATABASE_URL if set, else a shared
SQLite file). The ledger is on in both. Prints calls/s, p50 and p99 at concurrency 1 and 32 for
each, the CPU seconds the server processes used per 1,000 calls (from /proc/<pid>/stat), and the
ratios against the bare relay measured in the same round; then a summary table of medians.

Rounds: every relay is started once and measured `--rounds` times, interleaved (baseline, set-ups,
baseline, set-ups…). On a shared or virtual machine the bare relay alone was seen to swing from
13,500 to 21,600 calls/s between consecutive runs; a ratio is taken within its round, and the
summary gives the median of the rounds' ratios.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[1]
TOOL = {
    "name": "echo",
    "description": "echo",
    "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
}
LEVELS = (1, 32)
BASELINES = {"process": "bare websockets relay, own process", "in-loop": "bare websockets relay, in client's loop"}
START_SECONDS = 30  # a server process must be ready within this
SETUP_SECONDS = 20  # connecting, the ready frames and registering the toolkit
# Ledger rows are flushed every MESHSITE_LEDGER_FLUSH_SECONDS (default 0.5) on their own thread:
# CPU is read this long after the warm-up and after the measured phase, so the rows written for the
# measured calls are counted and those of the warm-up are not.
SETTLE_SECONDS = float(os.environ.get("MESHSITE_LEDGER_FLUSH_SECONDS", "0.5")) + 0.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def phase_seconds(calls: int) -> float:
    """Bound on one measured phase: generous (20 calls/s would be 50x slower than any figure seen)."""
    return 30 + calls / 20


@dataclass
class Result:
    concurrency: int
    calls: int
    seconds: float
    latencies: list[float]
    cpu: float | None = None  # CPU seconds the server processes used during the measured phase

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def cpu_per_1k(self) -> float | None:
        return None if self.cpu is None else self.cpu * 1000 / self.calls


# --- CPU of server processes, from /proc -------------------------------------------------------------


def cpu_seconds(roots: list[int]) -> float:
    """utime + stime (+ cutime + cstime, for children already reaped) of the given processes and
    all their live descendants, in seconds. Linux only; resolution one clock tick (usually 10 ms)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue  # the process ended while we looked
        fields = raw[raw.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
        # fields[0] is field 3 of proc(5): state; ppid is 4, utime 14, stime 15, cutime 16, cstime 17
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(value) for value in fields[11:15])
    tree = {pid for pid in roots if pid in ticks}
    grew = True
    while grew:  # bounded: each pass adds at least one process or stops
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        grew = bool(children)
        tree |= children
    return sum(ticks[pid] for pid in tree) / CLOCK_TICKS


# --- the bare relay: the same JSON-RPC frames, forwarded by a websockets server -------------------


async def bare_relay_server(port: int) -> "websockets.Server":
    peers: dict[str, websockets.ServerConnection] = {}
    pending: dict[str, tuple[websockets.ServerConnection, object]] = {}
    ids = itertools.count()

    async def handler(ws: websockets.ServerConnection) -> None:
        name = ws.request.path.strip("/")
        peers[name] = ws
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "room.ready", "params": {}}))
        async for frame in ws:
            message = json.loads(frame)
            if message.get("method") == "tools.invoke":
                call_id = f"k_{next(ids)}"
                pending[call_id] = (ws, message["id"])
                params = message["params"]
                await peers["host"].send(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": call_id,
                            "method": "tools.call",
                            "params": {
                                "call_id": call_id,
                                "toolkit": params["toolkit"],
                                "tool": params["tool"],
                                "arguments": params["arguments"],
                            },
                        }
                    )
                )
            elif "result" in message:
                caller, request_id = pending.pop(message["id"])
                await caller.send(
                    json.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"output": message["result"]}})
                )
            elif message.get("method") == "toolkits.register":
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {}}))

    return await websockets.serve(handler, "127.0.0.1", port, compression=None)


def server_port(server: "websockets.Server") -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


async def run_bare_relay(port: int) -> None:
    """The bare relay's own process: serve until SIGTERM/SIGINT or until the bench closes our stdin
    (so a bench that dies does not leave the relay behind)."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            finish()

    loop.add_signal_handler(signal.SIGTERM, finish)
    loop.add_signal_handler(signal.SIGINT, finish)
    loop.add_reader(sys.stdin.fileno(), on_stdin)
    server = await bare_relay_server(port)
    print(f"ready {server_port(server)}", flush=True)
    await stop
    server.close()
    await server.wait_closed()


class BareRelayProcess:
    """The bare relay in a subprocess of its own, on its own port."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--bare-relay-port", "0"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], START_SECONDS)
        line = self.process.stdout.readline().decode().split() if readable else []
        if len(line) != 2 or line[0] != "ready":
            self.stop()
            raise RuntimeError("the bare relay did not start")
        return int(line[1])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


# --- the clients, identical for both relays ----------------------------------------------------------


async def host_loop(ws: websockets.ClientConnection) -> None:
    async for frame in ws:
        message = json.loads(frame)
        if message.get("method") == "tools.call":
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": message["params"]["arguments"]}))


async def drive(
    caller_url: str,
    host_url: str,
    calls: int,
    concurrency: int,
    cpu: Callable[[], float] | None = None,
) -> Result:
    """Run `calls` calls at `concurrency`; with `cpu`, also the server CPU it returns, read before and
    after the measured phase (each time after SETTLE_SECONDS)."""
    async with (
        websockets.connect(host_url, compression=None, max_size=None) as host,
        websockets.connect(caller_url, compression=None, max_size=None) as caller,
    ):
        async with asyncio.timeout(SETUP_SECONDS):
            await host.recv()
            await caller.recv()
            await host.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "toolkits.register",
                        "params": {"name": "bench", "tools": [TOOL]},
                    }
                )
            )
            for _ in range(1000):
                if json.loads(await host.recv()).get("id") == 1:
                    break
            else:
                raise RuntimeError("no answer to toolkits.register")
        serving = asyncio.create_task(host_loop(host))
        waiting: dict[int, asyncio.Future[None]] = {}

        async def read_answers() -> None:
            async for frame in caller:
                message = json.loads(frame)
                future = waiting.pop(message.get("id"), None)
                if future is not None:
                    if "error" in message:
                        future.set_exception(RuntimeError(message["error"]))
                    else:
                        future.set_result(None)

        reading = asyncio.create_task(read_answers())
        ids = itertools.count(2)
        latencies: list[float] = []
        remaining = itertools.count()

        async def worker() -> None:
            loop = asyncio.get_running_loop()
            while next(remaining) < calls:
                request_id = next(ids)
                future = loop.create_future()
                waiting[request_id] = future
                started = time.perf_counter()
                await caller.send(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": request_id,
                            "method": "tools.invoke",
                            "params": {"toolkit": "bench", "tool": "echo", "arguments": {"n": request_id}},
                        }
                    )
                )
                await future
                latencies.append(time.perf_counter() - started)

        try:
            cpu_before = 0.0
            if cpu is not None:
                await asyncio.sleep(SETTLE_SECONDS)
                cpu_before = cpu()
            begin = time.perf_counter()
            async with asyncio.timeout(phase_seconds(calls)):
                await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - begin
            used = None
            if cpu is not None:
                await asyncio.sleep(SETTLE_SECONDS)
                used = cpu() - cpu_before
        finally:
            serving.cancel()
            reading.cancel()
        return Result(concurrency, calls, elapsed, latencies, used)


async def measure(caller_url: str, host_url: str, calls: int, warmup: int, pids: list[int] | None) -> dict[int, Result]:
    """Warm-up then measured phase at each concurrency level; server CPU if the server pids are known."""
    cpu = (lambda: cpu_seconds(pids)) if pids else None
    results = {}
    for concurrency in LEVELS:
        await drive(caller_url, host_url, warmup, concurrency)
        results[concurrency] = await drive(caller_url, host_url, calls, concurrency, cpu)
    return results


# --- Meshsite server processes -----------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Meshsite:
    def __init__(self, var_dir: Path, redis_url: str | None) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.local",
            "DJANGO_DEBUG": "0",
            "MESHSITE_VAR_DIR": str(var_dir),
            "REDIS_URL": redis_url or "",
            "MESHSITE_REDIS_PREFIX": os.environ.get("MESHSITE_REDIS_PREFIX", "meshsite-bench"),
            "MESHSITE_RATE_PER_SECOND": "1000000",
            "MESHSITE_RATE_BURST": "1000000",
            "MESHSITE_LOG_LEVEL": "WARNING",
            "MESHSITE_TOKEN_SECRET": "bench-token-secret-bench-token-secret",
        }
        self.env.pop("MESHSITE_SQLITE_PATH", None)  # SQLite, when used, lives in var_dir
        if redis_url is None:
            self.env.pop("DATABASE_URL", None)  # one process is the embedded default: SQLite
        self.processes: list[subprocess.Popen[bytes]] = []
        self.python = sys.executable

    def manage(self, *args: str) -> str:
        return (
            subprocess.check_output([self.python, "manage.py", *args], cwd=ROOT, env=self.env, timeout=120)
            .decode()
            .strip()
        )

    def prepare(self) -> None:
        self.manage("migrate", "-v0")
        if "bench" not in self.manage(
            "shell",
            "-c",
            "from rooms.models import Project;print(list(Project.objects.values_list('slug', flat=True)))",
        ):
            self.manage("mesh", "create-project", "bench")

    def token(self, identity: str, room: str = "relay") -> str:
        return self.manage("mesh", "token", "--project", "bench", "--room", room, "--identity", identity)

    def serve(self) -> int:
        port = free_port()
        process = subprocess.Popen(
            [self.python, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                return port
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("meshsite did not start")

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


# --- the report -----------------------------------------------------------------------------------


def ratio(value: float | None, base: float | None) -> str:
    return "n/a" if value is None or not base else f"{value / base:.2f}x"


def detail(name: str, result: Result, baselines: dict[str, dict[int, Result]]) -> str:
    cpu = "n/a" if result.cpu_per_1k is None else f"{result.cpu_per_1k:6.3f}"
    line = (
        f"{name:<42} c={result.concurrency:<3} {result.rate:7.0f} calls/s"
        f"  p50 {result.pct(0.5):7.3f} ms  p99 {result.pct(0.99):7.3f} ms  cpu {cpu} s/1k calls"
    )
    for kind, baseline in baselines.items():
        base = baseline[result.concurrency]
        line += (
            f"  | vs {kind}: throughput {ratio(result.rate, base.rate)}"
            f" p50 {ratio(result.pct(0.5), base.pct(0.5))} cpu {ratio(result.cpu_per_1k, base.cpu_per_1k)}"
        )
    return line


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


Rounds = list[tuple[dict[str, dict[int, Result]], list[tuple[str, dict[int, Result]]]]]


def summary(rounds: Rounds) -> list[str]:
    """Markdown table: c=32 throughput, c=1 p50, server CPU per 1,000 calls: each the median over
    the rounds, with the median of the rounds' ratios to the first baseline (and, in parentheses,
    to the second one when both were measured). A ratio is taken within its round, where the
    baseline ran minutes, not tens of minutes, from the set-up it is compared with."""
    kinds = list(rounds[0][0])
    picks: list[tuple[int, str, int, Callable[[Result], float | None]]] = [
        (32, " calls/s", 0, lambda r: r.rate),
        (1, " ms", 3, lambda r: r.pct(0.5)),
        (32, "", 3, lambda r: r.cpu_per_1k),
        (1, "", 3, lambda r: r.cpu_per_1k),
    ]

    def cell(values: list[float | None], unit: str, digits: int, bases: dict[str, list[float | None]]) -> str:
        if any(value is None for value in values):
            return "n/a"
        known = [value for value in values if value is not None]
        text = f"{median(known):,.{digits}f}{unit}"
        for position, kind in enumerate(kind for kind in kinds if kind in bases):
            pairs = [(value, base) for value, base in zip(known, bases[kind], strict=True) if base]
            if len(pairs) != len(known):
                continue
            ratio_text = f"{median([value / base for value, base in pairs]):.2f}x"
            text += f" = {ratio_text}" if position == 0 else f" ({kind}: {ratio_text})"
        return text

    lines = [
        "| set-up | c=32 throughput | c=1 p50 | server CPU s / 1,000 calls, c=32 | c=1 |",
        "|---|---|---|---|---|",
    ]
    for kind in kinds:
        cells = []
        for level, unit, digits, pick in picks:
            cells.append(cell([pick(baselines[kind][level]) for baselines, _ in rounds], unit, digits, {}))
        lines.append(f"| {BASELINES[kind]} | {' | '.join(cells)} |")
    for position, (name, _) in enumerate(rounds[0][1]):
        cells = []
        for level, unit, digits, pick in picks:
            values = [pick(rows[position][1][level]) for _, rows in rounds]
            bases = {kind: [pick(baselines[kind][level]) for baselines, _ in rounds] for kind in kinds}
            cells.append(cell(values, unit, digits, bases))
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


@dataclass
class Target:
    """A relay under test, started once and measured in every round."""

    name: str
    caller_url: str
    host_url: str
    pids: list[int] | None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every relay this many times, interleaved; the summary gives medians",
    )
    parser.add_argument("--setups", default="single,redis")
    parser.add_argument("--baseline", choices=["process", "in-loop", "both"], default="process")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15",
    )
    parser.add_argument("--bare-relay-port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_relay_port is not None:  # we are the bare relay's own process
        await run_bare_relay(args.bare_relay_port)
        return
    setups = [setup for setup in args.setups.split(",") if setup]
    unknown = set(setups) - {"single", "redis"}
    if unknown:
        parser.error(f"unknown set-up(s): {', '.join(sorted(unknown))}")
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    warmup = max(200, args.calls // 10)

    async with contextlib.AsyncExitStack() as stack:
        baselines: dict[str, Target] = {}
        for kind in ("process", "in-loop") if args.baseline == "both" else (args.baseline,):
            baselines[kind] = await start_baseline(kind, stack)
        targets = [start_meshsite(setup, args.redis_url, stack) for setup in setups]
        rounds: Rounds = []
        lines: list[str] = []
        for number in range(1, args.rounds + 1):
            # Every relay in every round, one after another: a machine whose speed drifts over the
            # run (other tenants, CPU boost) moves each round's baseline with its set-ups.
            measured = {
                kind: await measure(target.caller_url, target.host_url, args.calls, warmup, target.pids)
                for kind, target in baselines.items()
            }
            rows = [
                (target.name, await measure(target.caller_url, target.host_url, args.calls, warmup, target.pids))
                for target in targets
            ]
            rounds.append((measured, rows))
            lines.append(f"round {number}:")
            lines.extend(detail(BASELINES[kind], results[c], {}) for kind, results in measured.items() for c in LEVELS)
            lines.extend(detail(name, results[c], measured) for name, results in rows for c in LEVELS)

    print(
        f"{args.calls} calls per phase after {warmup} warm-up calls, {args.rounds} round(s);"
        " server CPU from /proc/<pid>/stat"
    )
    print("\n".join(lines))
    print()
    print("\n".join(summary(rounds)))


async def start_baseline(kind: str, stack: contextlib.AsyncExitStack) -> Target:
    if kind == "process":
        relay = BareRelayProcess()
        stack.callback(relay.stop)
        url = f"ws://127.0.0.1:{relay.start()}"
        return Target(BASELINES[kind], f"{url}/caller", f"{url}/host", [relay.pid])
    server = await bare_relay_server(0)  # in the bench's own loop: its CPU cannot be told from the client's

    async def close() -> None:
        server.close()
        await server.wait_closed()

    stack.push_async_callback(close)
    url = f"ws://127.0.0.1:{server_port(server)}"
    return Target(BASELINES[kind], f"{url}/caller", f"{url}/host", None)


def start_meshsite(setup: str, redis_url: str, stack: contextlib.AsyncExitStack) -> Target:
    if setup == "single":
        name = "1 process (embedded default)"
    else:
        name = f"2 processes over Redis, {'Postgres' if os.environ.get('DATABASE_URL') else 'shared SQLite'}"
    var_dir = Path(tempfile.mkdtemp(prefix=f"meshsite-bench-{setup}-"))
    stack.callback(shutil.rmtree, var_dir, ignore_errors=True)
    mesh = Meshsite(var_dir, redis_url if setup == "redis" else None)
    stack.callback(mesh.stop)
    mesh.prepare()
    caller_port = mesh.serve()
    host_port = mesh.serve() if setup == "redis" else caller_port
    # A room of its own per run: with a shared DATABASE_URL, an earlier run's host can still be on
    # record as present (its node not yet swept as lost) and would be routed to.
    room = f"relay-{secrets.token_hex(4)}"
    caller_url = f"ws://127.0.0.1:{caller_port}/rooms/{room}/ws?token={mesh.token('caller', room)}"
    host_url = f"ws://127.0.0.1:{host_port}/rooms/{room}/ws?token={mesh.token('host', room)}"
    return Target(name, caller_url, host_url, mesh.pids)


if __name__ == "__main__":
    asyncio.run(main())
