"""Real speech for the voice tests: `espeak-ng` (Debian's) synthesises the words, they are cut to
where the voice starts and stops, resampled to LiveKit's 48 kHz and split into 20 ms frames."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from meshsite_client.voice.audio import SAMPLE_RATE, AudioFrame, frames_of, resample

from tests.support.services import unavailable

SILENCE = 300  # |sample| below this is silence (espeak pads its output with digital silence)


def need_espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        unavailable("needs espeak-ng (apt-get install espeak-ng) to synthesise the speech it feeds the VAD")
    return path


@functools.cache
def speech_pcm(text: str) -> bytes:
    """`text` spoken by espeak-ng: 48 kHz mono 16-bit PCM, from the first to the last loud sample."""
    espeak = need_espeak()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([espeak, "-s", "170", "-w", str(out), text], check=True, capture_output=True)
        with wave.open(str(out)) as wav:
            rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE)
    return resample(samples[loud[0] : loud[-1] + 1].tobytes(), rate, SAMPLE_RATE)


def silence(seconds: float) -> list[AudioFrame]:
    return frames_of(b"\0" * int(seconds * SAMPLE_RATE) * 2)


def spoken_frames(text: str) -> list[AudioFrame]:
    return frames_of(speech_pcm(text))
