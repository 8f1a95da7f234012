"""Speech-to-text and text-to-speech through OpenAI-compatible audio endpoints.

`SpeechConfig` names the models, the voice and where to reach them (`base_url`, `api_key`; unset
ones come from `OPENAI_BASE_URL` / `OPENAI_API_KEY` like the LLM's). `transcribe` sends an
utterance as a 16 kHz WAV to `audio.transcriptions`; `synthesize` streams `audio.speech` as raw
PCM (`response_format="pcm"`: 16-bit mono at 24 kHz, OpenAI's format) and yields it resampled to
LiveKit's 48 kHz as the bytes arrive, so the first frame can play before the sentence is done.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai

from ..llm import LLMConfig
from ..llm.stream import _client_for, _translate
from .audio import SAMPLE_RATE, resample, to_wav

STT_RATE = 16_000  # what transcribers work at: a third of the bytes of 48 kHz, same result
TTS_RATE = 24_000  # OpenAI's `pcm` response format


@dataclass(frozen=True)
class SpeechConfig:
    stt_model: str = "whisper-1"
    tts_model: str = "tts-1"
    voice: str = "alloy"
    language: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    tts_rate: int = TTS_RATE
    timeout: float = 30.0

    def llm_config(self, model: str) -> LLMConfig:
        # the same client (and connection pool) the LLM layer keeps per key and base URL
        return LLMConfig(model=model, api_key=self.api_key, base_url=self.base_url, timeout=self.timeout).resolve()


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float  # of audio sent, what transcription is priced by


async def transcribe(config: SpeechConfig, pcm: bytes, sample_rate: int) -> Transcript:
    client = _client_for(config.llm_config(config.stt_model))
    audio = resample(pcm, sample_rate, STT_RATE)
    try:
        result = await client.audio.transcriptions.create(
            model=config.stt_model,
            file=("speech.wav", to_wav(audio, STT_RATE), "audio/wav"),
            language=config.language or openai.omit,
        )
    except openai.APIError as exc:
        raise _translate(exc) from exc
    text = result if isinstance(result, str) else str(getattr(result, "text", ""))
    return Transcript(text.strip(), len(audio) / 2 / STT_RATE)


async def synthesize(config: SpeechConfig, text: str) -> AsyncIterator[bytes]:
    """48 kHz mono PCM of `text` spoken, in chunks as the upstream streams them. Closing the
    iterator early (barge-in) closes the HTTP response."""
    client = _client_for(config.llm_config(config.tts_model))
    carry = b""  # an odd byte split across chunks belongs to the next sample
    try:
        async with client.audio.speech.with_streaming_response.create(
            model=config.tts_model, voice=config.voice, input=text, response_format="pcm"
        ) as response:
            async for chunk in response.iter_bytes(4800):
                data = carry + chunk
                cut = len(data) - len(data) % 2
                data, carry = data[:cut], data[cut:]
                if data:
                    yield resample(data, config.tts_rate, SAMPLE_RATE)
    except openai.APIError as exc:
        raise _translate(exc) from exc


async def aclose_quietly(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
