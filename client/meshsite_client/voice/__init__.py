"""Voice for agents: a speech loop (VAD, speech-to-text, text-to-speech, barge-in) over a
`Transport` (LiveKit's, or an in-memory one for tests). Needs the `voice` extra
(`pip install 'meshsite-client[voice]'`: `livekit`, `webrtcvad-wheels`, `numpy`, `openai`).
See docs/voice.md."""

from .audio import FRAME_MS, SAMPLE_RATE, AudioFrame, frames_of, resample
from .loop import BargeIn, Speaker, SpeechLoop, Utterance
from .speech import SpeechConfig, Transcript, synthesize, transcribe
from .transport import MemoryTransport, Played, Transport
from .vad import Segmenter, VADSettings

__all__ = [
    "FRAME_MS",
    "SAMPLE_RATE",
    "AudioFrame",
    "BargeIn",
    "MemoryTransport",
    "Played",
    "Segmenter",
    "Speaker",
    "SpeechConfig",
    "SpeechLoop",
    "Transcript",
    "Transport",
    "Utterance",
    "VADSettings",
    "frames_of",
    "resample",
    "synthesize",
    "transcribe",
]
