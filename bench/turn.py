"""ChatBot turn overhead on the embedded default, against a local OpenAI wire-format upstream.

Measures, per turn (issue 8's figures):
  (a) from a person's `threads.post` to the upstream receiving the model request;
  (b) from the upstream writing its first chunk to the first `threads.turn` text event reaching
      another participant.
Baseline, in the same run: a direct `openai` client call to the same upstream, (a) from the call to
the upstream receiving it, (b) from the first chunk written to the client reading it.

Every part runs as it would for real, each in its own process: the upstream, the Meshsite server
(SQLite, in-memory layer), the ChatBot (`run_agent`), and this script as the person. Timestamps are
`time.perf_counter()` (CLOCK_MONOTONIC, shared by the processes of one machine).

    .venv/bin/python bench/turn.py --turns 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay import Meshsite  # noqa: E402

TEXT = "Hello there, this is the answer"

UPSTREAM = """
import json, sys, time
from tests.support.fake_openai import FakeOpenAI
fake = FakeOpenAI(validate=False).start()
for _ in range(int(sys.argv[1])):
    fake.reply(sys.argv[2])
print(fake.base_url, flush=True)
for line in sys.stdin:
    if line.strip() == "dump":
        print(json.dumps([[r.received_at, r.first_chunk_at] for r in fake.requests]), flush=True)
    elif line.strip() == "quit":
        break
fake.stop()
"""

AGENT = """
import asyncio, sys
from meshsite_client.agents import run_agent
from meshsite_client.agents.chatbot import ChatBot
bot = ChatBot(name="assistant", model="gpt-bench", api_key="sk-bench", base_url=sys.argv[1])
asyncio.run(run_agent(bot, sys.argv[2], sys.argv[3]))
"""


class Upstream:
    def __init__(self, replies: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", UPSTREAM, str(replies), TEXT],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def timings(self) -> list[tuple[float, float]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("dump\n")
        self.process.stdin.flush()
        return [tuple(pair) for pair in json.loads(self.process.stdout.readline())]  # type: ignore[misc]

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


post_rtts: list[float] = []


async def person(url: str, token: str, turns: int) -> list[tuple[float, float]]:
    """Posts `turns` messages, one after the other; (post time, first text event arrival) each."""
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        ids = iter(range(1, 10**9))
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def read() -> None:
            async for raw in ws:
                inbox.put_nowait({**json.loads(raw), "_at": time.perf_counter()})

        reader = asyncio.create_task(read())

        async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
            request_id = next(ids)
            params = {"toolkit": "threads", "tool": tool, "arguments": arguments}
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools.invoke", "params": params}))
            while True:
                message = await asyncio.wait_for(inbox.get(), 30)
                if message.get("id") == request_id:
                    return message["result"]["output"]

        async def until(event: str) -> float:
            while True:
                message = await asyncio.wait_for(inbox.get(), 30)
                if message.get("method") == "threads.turn" and message["params"]["event"] == event:
                    return float(message["_at"])

        # wait for the bot to be present
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            request_id = next(ids)
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "toolkits.list", "params": {}}))
            while True:
                message = await asyncio.wait_for(inbox.get(), 30)
                if message.get("id") == request_id:
                    break
            if any(t["name"] == "assistant" for t in message["result"]["toolkits"]):
                break
            await asyncio.sleep(0.2)
        thread_id = (await call("create", {"title": "bench"}))["thread"]["id"]
        samples = []
        post_rtts.clear()
        for index in range(turns):
            posted = time.perf_counter()
            await call("post", {"thread_id": thread_id, "text": f"question {index}"})
            post_rtts.append((time.perf_counter() - posted) * 1000)
            first_text = await until("text")
            await until("ended")
            samples.append((posted, first_text))
        reader.cancel()
        return samples


async def direct(base_url: str, calls: int) -> list[tuple[float, float]]:
    import openai

    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        stream = await client.chat.completions.create(
            model="gpt-bench", messages=[{"role": "user", "content": f"question {index}"}], stream=True
        )
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
        assert first is not None
        samples.append((started, first))
    await client.close()
    return samples


def report(name: str, sent: list[tuple[float, float]], upstream: list[tuple[float, float]]) -> list[str]:
    a = [(received - posted) * 1000 for (posted, _), (received, _) in zip(sent, upstream, strict=True)]
    b = [(arrived - chunk) * 1000 for (_, arrived), (_, chunk) in zip(sent, upstream, strict=True)]
    (a50, a99), (b50, b99) = percentiles(a), percentiles(b)
    return [f"| {name} | {a50:.2f} | {a99:.2f} | {b50:.2f} | {b99:.2f} |"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    total = args.turns + args.warmup
    with tempfile.TemporaryDirectory(prefix="meshsite-bench-turn-") as var:
        upstream = Upstream(replies=2 * total)
        meshsite = Meshsite(Path(var), None)
        agent: subprocess.Popen[bytes] | None = None
        try:
            meshsite.prepare()
            port = meshsite.serve()
            url = f"ws://127.0.0.1:{port}/rooms/turn/ws"
            bot_token = meshsite.manage(
                "mesh",
                "token",
                "--project",
                "bench",
                "--room",
                "turn",
                "--identity",
                "assistant",
                "--role",
                "agent",
                "--agent",
                "assistant",
            )
            agent = subprocess.Popen([sys.executable, "-c", AGENT, upstream.base_url, url, bot_token], cwd=ROOT)
            alice = meshsite.manage("mesh", "token", "--project", "bench", "--room", "turn", "--identity", "alice")
            turns = await person(url, alice, total)
            calls = await direct(upstream.base_url, total)
            timings = upstream.timings()
        finally:
            if agent is not None:
                agent.terminate()
                agent.wait(20)
            meshsite.stop()
            upstream.stop()
    turn_upstream, direct_upstream = timings[:total], timings[total:]
    lines = [
        f"ChatBot turn overhead, {args.turns} turns after {args.warmup} warm-up, milliseconds",
        "| path | (a) request → upstream p50 | p99 | (b) first chunk → reader p50 | p99 |",
        "|---|---|---|---|---|",
        *report(
            "ChatBot turn (threads.post → upstream; chunk → threads.turn at another participant)",
            turns[args.warmup :],
            turn_upstream[args.warmup :],
        ),
        *report(
            "direct openai client (create → upstream; chunk → client)",
            calls[args.warmup :],
            direct_upstream[args.warmup :],
        ),
    ]
    lines.append(f"(threads.post round trip alone: p50 {statistics.median(post_rtts[args.warmup :]):.2f} ms)")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
