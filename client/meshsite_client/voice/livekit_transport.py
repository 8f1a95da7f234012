"""`LiveKitTransport`: the speech loop's audio through a LiveKit room, with LiveKit's real-time
Python SDK (`pip install livekit`).

The bot joins with a token the Meshsite server minted for it (`voice/` app: it may publish audio
and subscribe, nothing else), subscribes to the first remote microphone track (the person) as
48 kHz mono frames of 20 ms, and publishes one audio track fed by an `AudioSource` whose queue
(`buffer` seconds) paces playback; `clear()` empties that queue at once (barge-in). The incoming
frames end when the room disconnects or the last other participant leaves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from .audio import FRAME_MS, SAMPLE_RATE, AudioFrame

log = logging.getLogger("meshsite_client.voice.livekit")

try:
    from livekit import rtc
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("LiveKitTransport needs the `voice` extra: pip install 'meshsite-client[voice]'") from exc


class LiveKitTransport:
    def __init__(self, url: str, token: str, *, buffer: float = 0.2, track_name: str = "voicebot") -> None:
        self.url = url
        self.token = token
        self.buffer = buffer
        self.track_name = track_name
        self.room = rtc.Room()
        self._source: rtc.AudioSource | None = None
        self._incoming: asyncio.Queue[AudioFrame | None] = asyncio.Queue(maxsize=500)
        self._readers: set[asyncio.Task[None]] = set()
        self.room.on("track_subscribed", self._on_track_subscribed)
        self.room.on("disconnected", lambda *_: self._incoming.put_nowait(None))
        # the conversation is over when the last person left (the bot does not stay on alone)
        self.room.on("participant_disconnected", self._on_participant_left)

    async def connect(self) -> None:
        await self.room.connect(self.url, self.token, rtc.RoomOptions(auto_subscribe=True))
        self._source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=max(FRAME_MS, int(self.buffer * 1000)))
        track = rtc.LocalAudioTrack.create_audio_track(self.track_name, self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        # tracks of people already in the room were subscribed before the handler ran
        for participant in self.room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None and publication.kind == rtc.TrackKind.KIND_AUDIO:
                    self._read(publication.track)

    def _on_participant_left(self, participant: rtc.RemoteParticipant) -> None:
        log.info("%s left", participant.identity)
        if not self.room.remote_participants:
            self._incoming.put_nowait(None)

    def _on_track_subscribed(
        self, track: rtc.Track, _publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            log.info("listening to %s", participant.identity)
            self._read(track)

    def _read(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(
            track=track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=FRAME_MS
        )

        async def pump() -> None:
            async for event in stream:
                frame = event.frame
                if self._incoming.full():  # the loop fell behind: drop the oldest, never block the SDK
                    self._incoming.get_nowait()
                self._incoming.put_nowait(AudioFrame(bytes(frame.data), frame.sample_rate))

        task = asyncio.create_task(pump(), name="livekit-audio-in")
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    async def frames(self) -> AsyncIterator[AudioFrame]:
        while (frame := await self._incoming.get()) is not None:
            yield frame

    async def play(self, frame: AudioFrame) -> None:
        if self._source is None:
            raise RuntimeError("LiveKitTransport.play before connect()")
        samples = len(frame.data) // 2
        # capture_frame waits while the source's queue is full: that is the real-time pacing
        await self._source.capture_frame(rtc.AudioFrame(frame.data, frame.sample_rate, 1, samples))

    async def clear(self) -> None:
        if self._source is not None:
            self._source.clear_queue()

    async def close(self) -> None:
        for task in list(self._readers):
            task.cancel()
        if self._source is not None:
            await self._source.aclose()
        await self.room.disconnect()
        self._incoming.put_nowait(None)
