"""The speech loop: the person's frames through the VAD, utterances out, barge-in detection, and
the bot's speech played back in frames.

`SpeechLoop.run()` reads the transport's frames until it closes. Each `SpeechEnded` becomes an
`Utterance` handed to `on_utterance`; a `SpeechStarted` while the bot is busy (`busy()` says so:
thinking or speaking) is a barge-in, handed to `on_barge_in` at once, so the bot can stop
talking before the person has finished their first word. `Speaker` plays PCM chunks as frames
and can be stopped mid-frame (`stop()`: cancel and clear what the transport buffered).

Timestamps (`time.perf_counter()`) are kept for the figures in docs/voice.md: when each frame
arrived, when the VAD decided an utterance had ended, when a barge-in's first voiced frame
arrived and when playback stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from .audio import AudioFrame, Reframer
from .transport import Transport
from .vad import Segmenter, SpeechEnded, SpeechStarted, VADSettings

log = logging.getLogger("meshsite_client.voice")


@dataclass
class Utterance:
    pcm: bytes
    sample_rate: int
    seconds: float
    ended_at: float  # when the VAD decided it was over


@dataclass
class BargeIn:
    speech_at: float  # when the first voiced frame of the interrupting speech arrived
    detected_at: float


@dataclass
class LoopMetrics:
    utterances: list[Utterance] = field(default_factory=list)
    barge_ins: list[BargeIn] = field(default_factory=list)
    stopped_at: list[float] = field(default_factory=list)  # playback stopped for a barge-in


class SpeechLoop:
    def __init__(
        self,
        transport: Transport,
        *,
        on_utterance: Callable[[Utterance], None],
        on_barge_in: Callable[[BargeIn], None],
        busy: Callable[[], bool],
        vad: VADSettings | None = None,
    ) -> None:
        self.transport = transport
        self.on_utterance = on_utterance
        self.on_barge_in = on_barge_in
        self.busy = busy
        self.segmenter = Segmenter(vad)
        self.metrics = LoopMetrics()
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=64)
        self._count = 0

    async def run(self) -> None:
        reframer = Reframer()
        async for incoming in self.transport.frames():
            arrived = time.perf_counter()
            if incoming.sample_rate != reframer.sample_rate:
                reframer = Reframer(incoming.sample_rate)
            for frame in reframer.push(incoming.data):
                self._arrivals.append((self._count, arrived))
                self._count += 1
                for event in self.segmenter.push(frame):
                    self._handle(event)

    def _handle(self, event: SpeechStarted | SpeechEnded) -> None:
        now = time.perf_counter()
        if isinstance(event, SpeechStarted):
            if self.busy():
                speech_at = next((t for i, t in self._arrivals if i == event.first_frame_index), now)
                barge_in = BargeIn(speech_at, now)
                self.metrics.barge_ins.append(barge_in)
                self.on_barge_in(barge_in)
            return
        utterance = Utterance(event.pcm, event.sample_rate, event.seconds, now)
        self.metrics.utterances.append(utterance)
        self.on_utterance(utterance)


class Speaker:
    """Plays the bot's speech: chunks of 48 kHz PCM in, 20 ms frames out through the transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.first_frame_at: float | None = None  # of all playback (benchmarks reset it)
        self.last_frame_at: float | None = None
        self.frames_played = 0

    async def play(self, chunks: AsyncIterator[bytes], on_first_frame: Callable[[], None] | None = None) -> None:
        """Plays `chunks` to the end; `on_first_frame` runs once its first frame is out."""
        reframer = Reframer()
        first = True
        async for chunk in chunks:
            for frame in reframer.push(chunk):
                await self._send(frame)
                if first and on_first_frame is not None:
                    on_first_frame()
                first = False
        for frame in reframer.flush():
            await self._send(frame)

    async def _send(self, frame: AudioFrame) -> None:
        await self.transport.play(frame)
        now = time.perf_counter()
        if self.first_frame_at is None:
            self.first_frame_at = now
        self.last_frame_at = now
        self.frames_played += 1

    async def stop(self, task: asyncio.Task[None] | None) -> float:
        """Cancels `task` (the one playing) and drops what the transport still buffers; returns
        when playback stopped."""
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.transport.clear()
        return time.perf_counter()
