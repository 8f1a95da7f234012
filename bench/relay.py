"""Relay benchmark: caller A invokes a tool hosted by participant B, through Meshsite and through a
bare relay written with the `websockets` library alone (the physical-limit proxy), in one run.

    .venv/bin/python bench/relay.py [--calls 4000] [--setups single,redis]

Set-ups: `single` is one daphne process on the embedded default (SQLite, in-memory layer);
`redis` puts caller and host on two daphne processes sharing Redis (REDIS_URL, default
redis://127.0.0.1:6379/15) and the database (DATABASE_URL if set, else a shared SQLite file).
The ledger is on in both. Prints calls/s, p50 and p99 at concurrency 1 and 32 for each, and the
ratios against the bare relay measured in the same run.
"""

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[1]
TOOL = {
    "name": "echo",
    "description": "echo",
    "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
}


@dataclass
class Result:
    concurrency: int
    calls: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


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


# --- the clients, identical for both relays ----------------------------------------------------------


async def host_loop(ws: websockets.ClientConnection) -> None:
    async for frame in ws:
        message = json.loads(frame)
        if message.get("method") == "tools.call":
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": message["params"]["arguments"]}))


async def drive(caller_url: str, host_url: str, calls: int, concurrency: int) -> Result:
    async with (
        websockets.connect(host_url, compression=None, max_size=None) as host,
        websockets.connect(caller_url, compression=None, max_size=None) as caller,
    ):
        await host.recv()
        await caller.recv()
        await host.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "toolkits.register", "params": {"name": "bench", "tools": [TOOL]}}
            )
        )
        while json.loads(await host.recv()).get("id") != 1:
            pass
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

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
        serving.cancel()
        reading.cancel()
        return Result(concurrency, calls, elapsed, latencies)


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
            "MESHSITE_RATE_PER_SECOND": "1000000",
            "MESHSITE_RATE_BURST": "1000000",
            "MESHSITE_LOG_LEVEL": "WARNING",
            "MESHSITE_TOKEN_SECRET": "bench-token-secret-bench-token-secret",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.python = sys.executable

    def manage(self, *args: str) -> str:
        return subprocess.check_output([self.python, "manage.py", *args], cwd=ROOT, env=self.env).decode().strip()

    def prepare(self) -> None:
        self.manage("migrate", "-v0")
        if "bench" not in self.manage(
            "shell",
            "-c",
            "from rooms.models import Project;print(list(Project.objects.values_list('slug', flat=True)))",
        ):
            self.manage("mesh", "create-project", "bench")

    def token(self, identity: str) -> str:
        return self.manage("mesh", "token", "--project", "bench", "--room", "relay", "--identity", identity)

    def serve(self) -> int:
        port = free_port()
        process = subprocess.Popen(
            [self.python, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                return port
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("meshsite did not start")

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(20)


def report(name: str, result: Result, baseline: Result | None) -> str:
    line = (
        f"{name:<34} c={result.concurrency:<3} {result.rate:9.0f} calls/s"
        f"  p50 {result.pct(0.5):7.3f} ms  p99 {result.pct(0.99):7.3f} ms"
    )
    if baseline is not None:
        line += f"   throughput x{result.rate / baseline.rate:.3f}  p50 x{result.pct(0.5) / baseline.pct(0.5):.2f}"
    return line


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--setups", default="single,redis")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    setups = args.setups.split(",")
    levels = (1, 32)
    warmup = max(200, args.calls // 10)

    port = free_port()
    bare = await bare_relay_server(port)
    baseline: dict[int, Result] = {}
    for concurrency in levels:
        await drive(f"ws://127.0.0.1:{port}/caller", f"ws://127.0.0.1:{port}/host", warmup, concurrency)
        baseline[concurrency] = await drive(
            f"ws://127.0.0.1:{port}/caller", f"ws://127.0.0.1:{port}/host", args.calls, concurrency
        )
    bare.close()
    lines = [report("bare websockets relay", baseline[c], None) for c in levels]

    for setup in setups:
        var_dir = Path(tempfile.mkdtemp(prefix=f"meshsite-bench-{setup}-"))
        mesh = Meshsite(var_dir, args.redis_url if setup == "redis" else None)
        try:
            mesh.prepare()
            caller_port = mesh.serve()
            host_port = mesh.serve() if setup == "redis" else caller_port
            caller_url = f"ws://127.0.0.1:{caller_port}/rooms/relay/ws?token={mesh.token('caller')}"
            host_url = f"ws://127.0.0.1:{host_port}/rooms/relay/ws?token={mesh.token('host')}"
            for concurrency in levels:
                await drive(caller_url, host_url, warmup, concurrency)
                result = await drive(caller_url, host_url, args.calls, concurrency)
                name = "meshsite, 1 process" if setup == "single" else "meshsite, 2 processes over Redis"
                lines.append(report(name, result, baseline[concurrency]))
        finally:
            mesh.stop()
            shutil.rmtree(var_dir, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
