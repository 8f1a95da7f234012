"""Where the speech loop's audio comes from and goes to.

`Transport` is the interface: `connect()`, an async iterator of the person's incoming frames
(`frames()`), `play(frame)` to send a frame of the bot's speech (it may wait: a transport paces
playback at real time and buffers at most `buffer` seconds ahead), `clear()` to drop what is
buffered and not yet heard (barge-in), and `close()`.

`LiveKitTransport` (`livekit_transport.py`) is the real one. `MemoryTransport` is the one tests
and benchmarks use: the audio fed in with `feed()` comes out of `frames()`, and what is played is
kept with the times it would have been heard, as a listener on the other side would hear it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from .audio import AudioFrame


class Transport(Protocol):
    async def connect(self) -> None: ...

    def frames(self) -> AsyncIterator[AudioFrame]: ...

    async def play(self, frame: AudioFrame) -> None: ...

    async def clear(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Played:
    frame: AudioFrame
    sent_at: float  # time.perf_counter() when play() was called with it
    heard_at: float  # when a listener would hear it, after what was queued before


class MemoryTransport:
    """An in-process transport: feed the person's audio in, collect the bot's audio out.

    Playback follows a clock like LiveKit's `AudioSource` (a queue drained in real time, at most
    `buffer` seconds of it): `play` waits while the queue is full, and `clear` drops the rest,
    recording when (`cleared_at`) and how much audio was dropped unheard.
    """

    def __init__(self, buffer: float = 0.2) -> None:
        self.buffer = buffer
        self.played: list[Played] = []
        self.cleared_at: list[float] = []
        self.dropped_seconds = 0.0
        self._incoming: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self._playout_end = 0.0  # when the queued audio will have been heard
        self._connected = False

    async def connect(self) -> None:
        self._connected = True

    async def frames(self) -> AsyncIterator[AudioFrame]:
        while (frame := await self._incoming.get()) is not None:
            yield frame

    def feed_frame(self, frame: AudioFrame) -> None:
        self._incoming.put_nowait(frame)

    async def feed(self, frames: list[AudioFrame], *, realtime: bool = True) -> list[float]:
        """Sends the person's frames, at the pace a microphone would (`realtime`); returns when
        each was sent (perf_counter)."""
        sent = []
        start = time.perf_counter()
        elapsed = 0.0
        for frame in frames:
            if realtime:
                delay = start + elapsed - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent.append(time.perf_counter())
            self._incoming.put_nowait(frame)
            elapsed += frame.duration
        return sent

    async def play(self, frame: AudioFrame) -> None:
        now = time.perf_counter()
        self._playout_end = max(self._playout_end, now)
        ahead = self._playout_end - now
        if ahead > self.buffer:
            await asyncio.sleep(ahead - self.buffer)
        sent = time.perf_counter()
        self.played.append(Played(frame, sent, max(self._playout_end, sent)))
        self._playout_end = max(self._playout_end, sent) + frame.duration

    async def clear(self) -> None:
        now = time.perf_counter()
        self.dropped_seconds += max(0.0, self._playout_end - now)
        self._playout_end = now
        self.cleared_at.append(now)

    @property
    def playing(self) -> bool:
        return self._playout_end > time.perf_counter()

    async def close(self) -> None:
        self._incoming.put_nowait(None)
