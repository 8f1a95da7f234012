"""Voice activity detection with WebRTC's VAD (`webrtcvad-wheels`), turned into utterances.

WebRTC's VAD classifies one 10, 20 or 30 ms frame at 8, 16, 32 or 48 kHz as speech or not; on its
own it flickers. `Segmenter` smooths it the usual way: speech *starts* when `start_frames` of the
last `start_window` frames are voiced (so a click does not count), and *ends* after
`end_silence` seconds without a voiced frame. A frame also needs some energy (`min_rms`) to count
as voiced: after a click the VAD keeps saying "speech" for a few frames of silence (its hangover).
The audio from a little before the start (`pre_roll`) to the end is the utterance handed to
speech-to-text.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import webrtcvad  # type: ignore[import-untyped]  # no stubs published

from .audio import FRAME_MS, AudioFrame


@dataclass
class VADSettings:
    aggressiveness: int = 2  # 0 (least) … 3 (most eager to call a frame non-speech)
    start_frames: int = 4  # voiced frames among the last `start_window` that start speech
    start_window: int = 6
    end_silence: float = 0.5  # seconds of no voiced frame that end it
    pre_roll: float = 0.2  # seconds of audio kept from before the start
    max_utterance: float = 30.0  # an utterance is cut here (someone talking forever)
    min_rms: float = 100.0  # of the 16-bit samples (about -50 dBFS): quieter frames are not speech


@dataclass
class SpeechStarted:
    first_frame_index: int  # the index of the first voiced frame of the start window


@dataclass
class SpeechEnded:
    pcm: bytes
    sample_rate: int
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = len(self.pcm) / 2 / self.sample_rate


VADEvent = SpeechStarted | SpeechEnded


class Segmenter:
    """Feed frames in order (`push`), get `SpeechStarted` / `SpeechEnded` events back."""

    def __init__(self, settings: VADSettings | None = None) -> None:
        self.settings = settings or VADSettings()
        self._vad = webrtcvad.Vad(self.settings.aggressiveness)
        self._recent: deque[tuple[int, bool]] = deque(maxlen=self.settings.start_window)
        self._pre: deque[bytes] = deque(maxlen=max(1, int(self.settings.pre_roll * 1000 / FRAME_MS)))
        self._speech: list[bytes] = []
        self._in_speech = False
        self._silent_for = 0.0
        self._index = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        voiced = self._vad.is_speech(frame.data, frame.sample_rate) and _rms(frame.data) >= self.settings.min_rms
        index, self._index = self._index, self._index + 1
        events: list[VADEvent] = []
        if not self._in_speech:
            self._recent.append((index, voiced))
            self._pre.append(frame.data)
            if sum(v for _, v in self._recent) >= self.settings.start_frames:
                first = next(i for i, v in self._recent if v)
                self._in_speech, self._silent_for = True, 0.0
                self._speech = list(self._pre)
                self._pre.clear()
                self._recent.clear()
                events.append(SpeechStarted(first))
            return events
        self._speech.append(frame.data)
        self._silent_for = 0.0 if voiced else self._silent_for + frame.duration
        spoken = len(self._speech) * frame.duration
        if self._silent_for >= self.settings.end_silence or spoken >= self.settings.max_utterance:
            events.append(SpeechEnded(b"".join(self._speech), frame.sample_rate))
            self._in_speech, self._speech = False, []
        return events


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0
