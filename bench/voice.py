"""VoiceBot latency on the embedded default, against a local OpenAI wire-format upstream.

Measures (issue 13's figures):
  (a) end of speech → first answer frame out: from the VAD deciding the person stopped talking to
      the first 20 ms frame of the spoken answer handed to the transport; the path between is
      STT, posting the transcript, the LLM turn up to its first sentence, and TTS to its first audio.
      Baseline in the same run: the same three upstream calls made directly with the `openai`
      client (transcribe, stream the chat until the first sentence, stream speech to its first
      chunk), i.e. what the upstream alone costs.
  (b) barge-in: from the first frame of the interrupting speech arriving to playback stopped
      (the Speaker cancelled and the transport's queue cleared). The VAD needs 4 voiced frames
      (80 ms of audio, which arrive in real time) before it calls it speech, so (b) includes them;
      the time after detection is reported apart.

Every part runs as it would for real: the upstream (`tests/support/fake_openai.py`, STT answering
with a queued transcript, TTS a generated tone) and the Meshsite server each in their own process;
the VoiceBot and its in-memory transport in this one, fed espeak-ng speech in real time, 20 ms a
frame. No LiveKit server is involved: the transport is `MemoryTransport`, paced like LiveKit's
AudioSource (200 ms queue).

    .venv/bin/python bench/voice.py --turns 30 --barge-ins 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshsite.settings.test")

from relay import Meshsite  # noqa: E402

QUESTION = "What time is it now?"
ANSWER = "It is noon. Have a nice lunch."
LONG_ANSWER = "This is a long answer that goes on. " * 8

UPSTREAM = """
import sys
from tests.support.fake_openai import FakeOpenAI
fake = FakeOpenAI(validate=False).start()
print(fake.base_url, flush=True)
for line in sys.stdin:
    command, _, text = line.rstrip("\\n").partition(" ")
    if command == "reply":
        fake.reply(text)
    elif command == "transcript":
        fake.transcribe(text)
    elif command == "quit":
        break
    print("ok", flush=True)
fake.stop()
"""


class Upstream:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", UPSTREAM],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # a barge-in closes a speech stream mid-way: the fake logs the reset, which is expected
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def send(self, command: str, text: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{command} {text}\n")
        self.process.stdin.flush()
        self.process.stdout.readline()

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
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def row(name: str, values: list[float]) -> str:
    p50, p99 = percentiles(values)
    return f"| {name} | {len(values)} | {p50:.1f} | {p99:.1f} |"


async def wait_until(condition, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the VoiceBot did not get there in time")
        await asyncio.sleep(0.005)


async def direct(base_url: str, upstream: Upstream, pcm: bytes, calls: int) -> list[float]:
    """The same upstream calls without Meshsite: transcribe, chat to the first sentence, speech to
    its first chunk."""
    import openai
    from meshsite_client.voice import SpeechConfig, synthesize, transcribe

    config = SpeechConfig(base_url=base_url, api_key="sk-bench")
    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    samples = []
    for _ in range(calls):
        upstream.send("transcript", QUESTION)
        upstream.send("reply", ANSWER)
        started = time.perf_counter()
        transcript = await transcribe(config, pcm, 48_000)
        stream = await client.chat.completions.create(
            model="gpt-bench", messages=[{"role": "user", "content": transcript.text}], stream=True
        )
        text = ""
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
                if "." in text:
                    break
        await stream.close()
        speech = synthesize(config, text.split(".")[0] + ".")
        await anext(speech)
        samples.append((time.perf_counter() - started) * 1000)
        await speech.aclose()
    await client.close()
    return samples


async def run(args: argparse.Namespace, url: str, bot_token: str, base_url: str, upstream: Upstream) -> list[str]:
    from meshsite_client.agents import run_agent
    from meshsite_client.agents.voicebot import VoiceBot
    from meshsite_client.voice import MemoryTransport

    from tests.voice.spoken import silence, speech_pcm, spoken_frames

    transport = MemoryTransport(buffer=0.2)
    bot = VoiceBot(name="voicebot", model="gpt-bench", api_key="sk-bench", base_url=base_url, transport=transport)
    stop = asyncio.Event()
    agent = asyncio.create_task(run_agent(bot, url, bot_token, stop_event=stop))
    await wait_until(lambda: bot.started or agent.done())
    if agent.done():
        agent.result()
    question = silence(0.3) + spoken_frames(QUESTION) + silence(0.7)
    interruption = spoken_frames("Wait, stop please") + silence(0.7)
    answer_latency, barge_in_total, barge_in_after_detect, vad_frames = [], [], [], []
    try:
        for index in range(args.warmup + args.turns):
            upstream.send("transcript", QUESTION)
            upstream.send("reply", ANSWER)
            bot.speaker.first_frame_at = None
            utterances = len(bot.loop.metrics.utterances)  # type: ignore[union-attr]
            await transport.feed(question)
            await wait_until(lambda: bot.speaker.first_frame_at is not None)
            await wait_until(lambda: bot._conversing is not None and bot._conversing.done())
            ended = bot.loop.metrics.utterances[utterances].ended_at  # type: ignore[union-attr]
            if index >= args.warmup:
                answer_latency.append((bot.speaker.first_frame_at - ended) * 1000)  # type: ignore[operator]
        metrics = bot.loop.metrics  # type: ignore[union-attr]
        for _ in range(args.barge_ins):
            upstream.send("transcript", QUESTION)
            upstream.send("reply", LONG_ANSWER)
            upstream.send("transcript", "Wait, stop please")
            upstream.send("reply", ANSWER)
            barge_ins = len(metrics.barge_ins)
            bot.speaker.first_frame_at = None
            await transport.feed(question)
            await wait_until(lambda: bot.speaker.first_frame_at is not None)
            await asyncio.sleep(0.5)  # half a second into the answer
            sent = await transport.feed(interruption)
            await wait_until(lambda n=barge_ins: len(metrics.stopped_at) > n)
            barge_in = metrics.barge_ins[barge_ins]
            stopped = metrics.stopped_at[barge_ins]
            barge_in_total.append((stopped - sent[0]) * 1000)
            barge_in_after_detect.append((stopped - barge_in.detected_at) * 1000)
            vad_frames.append((barge_in.detected_at - barge_in.speech_at) * 1000)
            await wait_until(lambda: bot._conversing is not None and bot._conversing.done())
        baseline = await direct(base_url, upstream, speech_pcm(QUESTION), args.turns)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(agent, 30)
    return [
        "VoiceBot latency (ms), embedded server, local upstream, in-memory transport fed espeak-ng speech in real time",
        "| measure | n | p50 | p99 |",
        "|---|---|---|---|",
        row("(a) VAD end of speech → first answer frame out", answer_latency),
        row("(a) baseline: direct STT + chat to first sentence + TTS first chunk", baseline),
        row("(b) barge-in: first frame of interrupting speech sent → playback stopped", barge_in_total),
        row("(b) of which the VAD's wait for 4 voiced frames (first voiced frame → detected)", vad_frames),
        row("(b) of which detection → playback stopped", barge_in_after_detect),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--barge-ins", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshsite-bench-voice-") as var:
        upstream = Upstream()
        meshsite = Meshsite(Path(var), None)
        try:
            meshsite.prepare()
            port = meshsite.serve()
            url = f"ws://127.0.0.1:{port}/rooms/voice/ws"
            token = meshsite.manage(
                "mesh", "token", "--project", "bench", "--room", "voice", "--identity", "voicebot",
                "--role", "agent", "--agent", "voicebot",
            )  # fmt: skip
            lines = await run(args, url, token, upstream.base_url, upstream)
        finally:
            meshsite.stop()
            upstream.stop()
    print("\n".join([*lines, f"(load: {os.getloadavg()[0]:.2f} 1-min average at the end)"]))


if __name__ == "__main__":
    asyncio.run(main())
