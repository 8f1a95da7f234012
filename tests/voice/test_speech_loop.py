"""The speech loop's parts on real audio: WebRTC's VAD on espeak-ng speech, speech-to-text and
text-to-speech through the `openai` client against the fake's audio endpoints, playback paced in
frames, and LiveKit's own `AudioSource` behind `LiveKitTransport`."""

import asyncio
import time

import pytest
from meshsite_client.llm import LLMAuthError
from meshsite_client.voice import MemoryTransport, SpeechConfig, synthesize, transcribe
from meshsite_client.voice.audio import AudioFrame, Reframer, frames_of, resample
from meshsite_client.voice.loop import Speaker, SpeechLoop
from meshsite_client.voice.vad import Segmenter, SpeechEnded, SpeechStarted

from tests.support.fake_openai import FakeOpenAI, fake_openai
from tests.voice.spoken import silence, speech_pcm, spoken_frames

__all__ = ["fake_openai"]


def events_for(frames):
    segmenter = Segmenter()
    return [(index, event) for index, frame in enumerate(frames) for event in segmenter.push(frame)]


def test_one_spoken_sentence_is_one_utterance_with_its_audio():
    frames = silence(0.5) + spoken_frames("What is the weather like in Oslo today?") + silence(1.0)
    events = events_for(frames)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    (started_at, started), (ended_at, ended) = events
    assert 25 <= started.first_frame_index <= started_at <= started.first_frame_index + 6  # 0.5 s of silence first
    spoken = len(speech_pcm("What is the weather like in Oslo today?")) / 2 / 48_000
    # the utterance holds the speech, a little from before it and the silence that ended it
    assert spoken < ended.seconds < spoken + 0.2 + 0.5 + 0.1
    assert ended_at * 0.02 - (0.5 + spoken) == pytest.approx(0.5, abs=0.1)


def test_silence_and_a_short_click_are_not_speech():
    click = [AudioFrame(b"\xff\x7f\x00\x80" * 480)]
    assert events_for(silence(2.0) + click + silence(1.0)) == []


def test_two_sentences_with_a_pause_are_two_utterances():
    frames = spoken_frames("Hello there.") + silence(1.0) + spoken_frames("How are you?") + silence(1.0)
    assert [type(e) for _, e in events_for(frames)] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]


def test_reframing_and_resampling_keep_the_audio():
    reframer = Reframer()
    frames = reframer.push(b"\1\0" * 1000) + reframer.push(b"\1\0" * 1000) + reframer.flush()
    assert [f.samples for f in frames] == [960, 960, 960]
    assert len(resample(b"\0\0" * 24_000, 24_000, 48_000)) == 2 * 48_000
    assert len(frames_of(b"\0\0" * 1000)) == 2


@pytest.mark.asyncio
async def test_transcription_sends_the_utterance_as_a_16khz_wav(fake_openai: FakeOpenAI):
    fake_openai.transcribe("hello world")
    config = SpeechConfig(base_url=fake_openai.base_url, api_key="sk-test", stt_model="whisper-1")
    transcript = await transcribe(config, speech_pcm("hello world"), 48_000)
    assert transcript.text == "hello world"
    received = fake_openai.audio_received[0]
    assert (received.model, received.filename, received.sample_rate) == ("whisper-1", "speech.wav", 16_000)
    assert (
        received.seconds
        == pytest.approx(transcript.seconds)
        == pytest.approx(len(speech_pcm("hello world")) / 2 / 48_000, abs=0.01)
    )
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-test"


@pytest.mark.asyncio
async def test_speech_streams_as_48khz_pcm_before_the_sentence_is_done(fake_openai: FakeOpenAI):
    fake_openai.speech_seconds_per_char = 0.1
    config = SpeechConfig(base_url=fake_openai.base_url, api_key="sk-test", tts_model="tts-1", voice="nova")
    chunks = [chunk async for chunk in synthesize(config, "Twenty characters ok")]
    assert len(chunks) > 1  # streamed, 100 ms at a time
    assert sum(len(c) for c in chunks) == pytest.approx(2 * 48_000 * 2.0, rel=0.01)
    body = fake_openai.requests[0].body
    assert body == {"model": "tts-1", "voice": "nova", "input": "Twenty characters ok", "response_format": "pcm"}


@pytest.mark.asyncio
async def test_a_refused_key_is_an_llm_error_that_says_so():
    with FakeOpenAI(api_key="sk-right") as fake:
        config = SpeechConfig(base_url=fake.base_url, api_key="sk-wrong")
        with pytest.raises(LLMAuthError):
            await transcribe(config, b"\0\0" * 4800, 48_000)
        with pytest.raises(LLMAuthError):
            async for _chunk in synthesize(config, "hi"):
                pass


@pytest.mark.asyncio
async def test_playback_is_paced_at_real_time_and_stops_at_once():
    transport = MemoryTransport(buffer=0.1)
    speaker = Speaker(transport)

    async def two_seconds():
        for _ in range(20):
            yield b"\0\0" * 4800  # 100 ms

    started = time.perf_counter()
    playing = asyncio.create_task(speaker.play(two_seconds()))
    await asyncio.sleep(0.5)
    stopped = await speaker.stop(playing)
    heard = [p for p in transport.played if p.heard_at <= stopped]
    assert 0.35 <= len(heard) * 0.02 <= 0.65  # about what half a second of real time lets out
    assert stopped - started < 0.6 and playing.cancelled()
    assert transport.dropped_seconds <= 0.1 + 0.02


@pytest.mark.asyncio
async def test_speech_while_busy_is_a_barge_in_at_its_first_words():
    transport = MemoryTransport()
    utterances, barge_ins = [], []
    busy = False
    loop = SpeechLoop(transport, on_utterance=utterances.append, on_barge_in=barge_ins.append, busy=lambda: busy)
    listening = asyncio.create_task(loop.run())
    await transport.feed(spoken_frames("Hello there.") + silence(0.7))
    busy = True
    sent = await transport.feed(silence(0.3) + spoken_frames("Wait a moment") + silence(0.7))
    await transport.close()
    await listening
    assert len(utterances) == 2 and len(barge_ins) == 1
    first_speech = sent[15]  # after the 0.3 s of silence
    # the barge-in is seen within a few frames of the first voiced one
    assert 0 <= barge_ins[0].speech_at - first_speech < 0.1
    assert barge_ins[0].detected_at - barge_ins[0].speech_at < 0.15


@pytest.mark.asyncio
async def test_the_livekit_transport_plays_through_livekits_audio_source_and_clears_it():
    from livekit import rtc
    from meshsite_client.voice.livekit_transport import LiveKitTransport

    transport = LiveKitTransport("ws://127.0.0.1:9", "token", buffer=0.2)
    # LiveKit's real AudioSource (its FFI), not connected to a room: publishing needs a server
    transport._source = rtc.AudioSource(48_000, 1, queue_size_ms=200)
    started = time.perf_counter()
    for frame in frames_of(b"\0\0" * 48_000):  # one second
        await transport.play(frame)
    # capture_frame waits while 200 ms are queued: one second took about 0.8 s to hand over
    assert 0.6 < time.perf_counter() - started < 1.2
    assert transport._source.queued_duration > 0.1
    await transport.clear()
    assert transport._source.queued_duration == 0
    await transport.close()


@pytest.mark.asyncio
async def test_the_livekit_transport_says_why_it_cannot_connect():
    from livekit import rtc
    from meshsite_client.voice.livekit_transport import LiveKitTransport

    transport = LiveKitTransport("ws://127.0.0.1:9", "token")
    with pytest.raises(rtc.ConnectError, match="Connection refused"):
        await asyncio.wait_for(transport.connect(), 30)
    await transport.close()
