"""The audio side of `FakeOpenAI`: `/v1/audio/transcriptions` and `/v1/audio/speech`.

Transcriptions: the multipart upload is parsed as the real API receives it (a `file` part and a
`model` field); a WAV file is decoded and its length in seconds recorded (`ReceivedAudio`), so a
test can check what audio the client sent. The fake recognises no speech: the transcript it
returns is the next one a test queued with `FakeOpenAI.transcribe(...)`.

Speech: `response_format=pcm` answers like OpenAI's: raw 16-bit little-endian mono PCM at 24 kHz,
streamed in chunks; the audio is a 220 Hz tone lasting `seconds_per_char` per character of input.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

SPEECH_RATE = 24_000
CHUNK_SAMPLES = 2_400  # 100 ms per chunk of the streamed body


@dataclass
class ReceivedAudio:
    model: str | None
    filename: str | None
    sample_rate: int = 0
    seconds: float = 0.0
    pcm: bytes = b""
    error: str | None = None


def transcription_request(request: Any) -> ReceivedAudio:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return ReceivedAudio(None, None, error="expected multipart/form-data")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.raw)
    fields: dict[str, Any] = {}
    filename = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name == "file":
            filename = part.get_filename()
        fields[str(name)] = payload
    model = fields.get("model", b"").decode() or None
    audio = ReceivedAudio(model, filename)
    if "file" not in fields or not model:
        audio.error = "file and model are required"
        return audio
    try:
        with wave.open(io.BytesIO(fields["file"])) as wav:
            audio.sample_rate = wav.getframerate()
            frames = wav.getnframes()
            audio.pcm = wav.readframes(frames)
            audio.seconds = frames / audio.sample_rate
    except (wave.Error, EOFError) as exc:
        audio.error = f"the fake decodes only WAV files: {exc}"
    return audio


def speech_pcm(text: str, seconds_per_char: float) -> Iterator[bytes]:
    total = max(1, int(len(text) * seconds_per_char * SPEECH_RATE))
    step = 2 * math.pi * 220 / SPEECH_RATE
    for start in range(0, total, CHUNK_SAMPLES):
        count = min(CHUNK_SAMPLES, total - start)
        samples = (int(8000 * math.sin(step * (start + n))) for n in range(count))
        yield struct.pack(f"<{count}h", *samples)
