"""Audio frames as LiveKit carries them: 16-bit signed little-endian PCM, mono, 48 kHz, 10 or 20 ms
per frame. Conversions the speech loop needs (resampling, WAV for speech-to-text) live here."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 48_000
FRAME_MS = 20
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000
BYTES_PER_SAMPLE = 2


@dataclass(frozen=True)
class AudioFrame:
    """One frame of mono 16-bit PCM (the shape of `livekit.rtc.AudioFrame`, without its FFI)."""

    data: bytes
    sample_rate: int = SAMPLE_RATE

    @property
    def samples(self) -> int:
        return len(self.data) // BYTES_PER_SAMPLE

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Linear-interpolation resampling of mono 16-bit PCM: good enough for speech to a VAD, a
    transcriber or a listener (TTS at 24 kHz to LiveKit's 48 kHz, 48 kHz to 16 kHz for STT)."""
    if from_rate == to_rate or not pcm:
        return pcm
    source = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    count = max(1, round(len(source) * to_rate / from_rate))
    positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
    out = np.interp(positions, np.arange(len(source)), source)
    return bytes(np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes())


def frames_of(pcm: bytes, sample_rate: int = SAMPLE_RATE, frame_ms: int = FRAME_MS) -> list[AudioFrame]:
    """Cut PCM into frames of `frame_ms`; the last one is padded with silence."""
    size = sample_rate * frame_ms // 1000 * BYTES_PER_SAMPLE
    frames = []
    for start in range(0, len(pcm), size):
        chunk = pcm[start : start + size]
        frames.append(AudioFrame(chunk.ljust(size, b"\0"), sample_rate))
    return frames


def to_wav(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(BYTES_PER_SAMPLE)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


class Reframer:
    """Collects PCM of any chunk size and hands it out in whole frames of `frame_ms`."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, frame_ms: int = FRAME_MS) -> None:
        self.sample_rate = sample_rate
        self.size = sample_rate * frame_ms // 1000 * BYTES_PER_SAMPLE
        self._pending = bytearray()

    def push(self, pcm: bytes) -> list[AudioFrame]:
        self._pending += pcm
        frames = []
        while len(self._pending) >= self.size:
            frames.append(AudioFrame(bytes(self._pending[: self.size]), self.sample_rate))
            del self._pending[: self.size]
        return frames

    def flush(self) -> list[AudioFrame]:
        if not self._pending:
            return []
        frame = AudioFrame(bytes(self._pending).ljust(self.size, b"\0"), self.sample_rate)
        self._pending.clear()
        return [frame]
