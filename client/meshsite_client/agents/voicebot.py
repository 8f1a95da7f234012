"""`VoiceBot`: a ChatBot you talk to. It listens through a `Transport` (a LiveKit room, see
`meshsite_client.voice`), and each time the person stops speaking it transcribes what they said,
posts it to the conversation's thread, runs a ChatBot turn on it (same rules, toolkits, approvals
through the person's `ui`, budgets and usage records) and speaks the answer as the model writes
it, sentence by sentence. Speaking while it talks (or thinks) interrupts it: playback stops at
once and the turn ends as interrupted, keeping in the thread only what was said.

Dispatched by the server (`voice/` app) with `call_arguments`: `livekit_url`, `livekit_token`,
`thread_id` (optional: a new thread otherwise) and `asker` (the person's participant record, whose
`ui` toolkit gets the approvals). A test or a local run passes `transport=` instead of LiveKit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import uuid
from typing import Any

from ..errors import MeshError, RpcError
from ..llm import LLMError
from ..tracing import current_traceparent, new_traceparent
from ..voice.loop import BargeIn, Speaker, SpeechLoop, Utterance
from ..voice.speech import SpeechConfig, aclose_quietly, synthesize, transcribe
from ..voice.transport import Transport
from ..voice.vad import VADSettings
from .chatbot import ChatBot, Turn

log = logging.getLogger("meshsite_client.agents.voicebot")

SPEECH_UNITS = {"stt": ("minute", "second"), "tts": ("character", "minute")}
# a sentence ends at . ! ? … or a line break followed by space; long clauses are cut at a comma
SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s+|\n+")
CLAUSE_END = re.compile(r"[,;:]\s+")
LONG_CLAUSE = 80
VOICE_RULE = (
    "You are talking with the person out loud: answer in short spoken sentences, without markdown, lists or code."
)


class VoiceReply:
    """One turn's answer on its way to the speaker: text in as the model streams it, sentences
    out to text-to-speech one after the other, each played as soon as its first audio arrives."""

    def __init__(self, bot: VoiceBot, turn: Turn) -> None:
        self.bot = bot
        self.turn = turn
        self.pending = ""
        self.spoken: list[str] = []  # sentences whose audio started playing
        self.sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._speak(), name=f"voicebot-reply-{turn.turn_id}")

    def feed(self, text: str) -> None:
        self.pending += text
        while True:
            match = SENTENCE_END.search(self.pending)
            if match is None and len(self.pending) > LONG_CLAUSE:
                match = CLAUSE_END.search(self.pending, LONG_CLAUSE // 2)
            if match is None:
                return
            sentence, self.pending = self.pending[: match.end()].strip(), self.pending[match.end() :]
            if sentence:
                self.sentences.put_nowait(sentence)

    def finish(self) -> None:
        if self.pending.strip():
            self.sentences.put_nowait(self.pending.strip())
        self.pending = ""
        self.sentences.put_nowait(None)

    async def _speak(self) -> None:
        bot = self.bot
        while (sentence := await self.sentences.get()) is not None:
            # the provider charges for the characters sent, heard or not
            bot.record_speech(self.turn, "tts", len(sentence))
            chunks = synthesize(bot.speech_config(), sentence)
            try:
                await bot.speaker.play(chunks, on_first_frame=functools.partial(self.spoken.append, sentence))
            finally:
                await aclose_quietly(chunks)

    @property
    def spoken_text(self) -> str:
        return " ".join(self.spoken)


class VoiceBot(ChatBot):
    """Talks with a person through a `Transport`; see the module docstring."""

    kind = "voicebot"
    stt_model: str = "whisper-1"
    tts_model: str = "tts-1"
    voice: str = "alloy"
    language: str | None = None
    # the audio endpoints; unset: the LLM's base URL and key (then OPENAI_BASE_URL / OPENAI_API_KEY)
    speech_base_url: str | None = None
    speech_api_key: str | None = None
    # the unit of the speech price rows the usage is reported in (observability price table)
    stt_unit: str = "minute"
    tts_unit: str = "character"
    tts_seconds_per_char: float = 0.06  # to report TTS in minutes: speech runs ~15 characters a second
    vad: dict[str, Any] = {}
    thread_title: str = "Voice conversation"
    transport: Transport | None = None
    leave_when_done: bool = True  # leave the room when the transport ends

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.stt_unit not in SPEECH_UNITS["stt"] or self.tts_unit not in SPEECH_UNITS["tts"]:
            raise ValueError(f"stt_unit must be one of {SPEECH_UNITS['stt']}, tts_unit one of {SPEECH_UNITS['tts']}")
        self.call_arguments: dict[str, Any] = {}
        self.thread_id = ""
        self.asker: dict[str, Any] = {}
        self.loop: SpeechLoop | None = None
        self._speaker: Speaker | None = None
        self._listening: asyncio.Task[None] | None = None
        self._conversing: asyncio.Task[None] | None = None
        self._reply: VoiceReply | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._leaving: asyncio.Task[None] | None = None

    def speech_config(self) -> SpeechConfig:
        return SpeechConfig(
            stt_model=self.stt_model,
            tts_model=self.tts_model,
            voice=self.voice,
            language=self.language,
            base_url=self.speech_base_url or self.base_url,
            api_key=self.speech_api_key or self.api_key,
        )

    def turn_prompt(self, turn: Turn) -> str:
        return f"{super().turn_prompt(turn)}\n\n{VOICE_RULE}"

    @property
    def speaker(self) -> Speaker:
        if self._speaker is None:
            raise MeshError("the VoiceBot is not started")
        return self._speaker

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        await super().on_start()
        arguments = self.call_arguments or {}
        self.asker = dict(arguments.get("asker") or {})
        if self.asker:
            present = self.room.participants.get(str(self.asker.get("participant_id")))
            if present is None or present.identity != self.asker.get("identity") or present.role != "user":
                raise MeshError("the person this VoiceBot was started for is not in the room")
        self.thread_id = str(arguments.get("thread_id") or "")
        if not self.thread_id:
            created = await self.room.invoke("threads", "create", {"title": self.thread_title})
            self.thread_id = created["thread"]["id"]
        if self.transport is None:
            from ..voice.livekit_transport import LiveKitTransport

            if not arguments.get("livekit_url") or not arguments.get("livekit_token"):
                raise MeshError("a VoiceBot needs livekit_url and livekit_token in its call arguments (or a transport)")
            self.transport = LiveKitTransport(str(arguments["livekit_url"]), str(arguments["livekit_token"]))
        try:
            await self.transport.connect()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.transport.close()  # a half-open LiveKit connection holds native resources
            raise
        self._speaker = Speaker(self.transport)
        self.loop = SpeechLoop(
            self.transport,
            on_utterance=self._on_utterance,
            on_barge_in=self._on_barge_in,
            busy=lambda: self._conversing is not None and not self._conversing.done(),
            vad=VADSettings(**self.vad),
        )
        self._listening = asyncio.create_task(self._listen(self.loop), name="voicebot-listen")

    async def _listen(self, loop: SpeechLoop) -> None:
        await loop.run()
        # the transport ended (the person hung up): the conversation is over, leave the room too
        if self.leave_when_done:
            self._leaving = asyncio.create_task(self._leave(), name="voicebot-leave")

    async def _leave(self) -> None:
        room = self.room
        await self.stop()
        await room.close()

    async def on_stop(self) -> None:
        for task in (self._listening, self._conversing):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._listening, self._conversing) if t), return_exceptions=True)
        if self.transport is not None:
            with contextlib.suppress(Exception):
                await self.transport.close()
        await asyncio.gather(*self._background, return_exceptions=True)
        await super().on_stop()

    # -- the conversation ----------------------------------------------------------------------

    def _on_utterance(self, utterance: Utterance) -> None:
        if self._conversing is not None and not self._conversing.done():
            self._conversing.cancel()  # normally stopped at the barge-in already
        self._conversing = asyncio.create_task(self._converse(utterance), name="voicebot-converse")

    def _on_barge_in(self, barge_in: BargeIn) -> None:
        task = self._conversing
        reply = self._reply
        if reply is not None:
            # the thread keeps what the person heard, not what the model had still to say
            reply.turn.text = (reply.spoken_text + " …") if reply.spoken else ""
        if task is not None and not task.done():
            task.cancel()  # now, so the model's stream adds nothing more to the turn
        self._spawn(self._stop_speaking(reply))

    async def _stop_speaking(self, reply: VoiceReply | None) -> None:
        stopped = await self.speaker.stop(reply.task if reply is not None else None)
        if self.loop is not None:
            self.loop.metrics.stopped_at.append(stopped)

    async def _converse(self, utterance: Utterance) -> None:
        traceparent = new_traceparent()
        token = current_traceparent.set(traceparent)
        turn = Turn(self.thread_id, uuid.uuid4().hex, self.asker, traceparent)
        try:
            try:
                transcript = await transcribe(self.speech_config(), utterance.pcm, utterance.sample_rate)
            except LLMError as exc:
                log.warning("could not transcribe an utterance: %s", exc)
                return
            self.record_speech(turn, "stt", transcript.seconds)
            if not transcript.text:
                return
            speaker = {k: self.asker[k] for k in ("participant_id", "identity") if k in self.asker}
            part = {"type": "text", "text": transcript.text, "spoken_by": speaker or {"identity": "person"}}
            posted = await self.room.invoke(
                "threads", "post", {"thread_id": self.thread_id, "parts": [part]}, traceparent=traceparent
            )
            self._remember(self.thread_id, posted["message"])
            self._reply = VoiceReply(self, turn)
            turn.on_text = self._reply.feed
            running = asyncio.create_task(self.run_turn(turn), name=f"voicebot-turn-{turn.turn_id}")
            self._current[self.thread_id] = running
            try:
                await running
            finally:
                self._current.pop(self.thread_id, None)
        finally:
            if self._reply is not None and self._reply.turn is turn:
                self._reply.task.cancel()
                self._reply = None
            current_traceparent.reset(token)

    async def answer(self, turn: Turn) -> None:
        """The ChatBot's answer, then the time it takes to say it: a voice turn ends when its
        last frame has been played (or when the person interrupts it)."""
        await super().answer(turn)
        reply = self._reply
        if reply is not None and reply.turn is turn:
            reply.finish()
            await reply.task

    # -- the thread as chat messages -------------------------------------------------------------

    def _as_chat(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        spoken = [p for p in message["parts"] if p.get("type") == "text" and isinstance(p.get("spoken_by"), dict)]
        if spoken:
            # the person's words, which the bot posted as their transcript
            name = str(spoken[0]["spoken_by"].get("identity") or "person")
            return [{"role": "user", "content": "\n".join(p["text"] for p in spoken), "name": _name(name)}]
        return super()._as_chat(message)

    # -- usage ---------------------------------------------------------------------------------

    def record_speech(self, turn: Turn, direction: str, amount: float) -> None:
        """Reports speech usage off the conversation's path: `amount` is seconds of audio (stt) or
        characters of text (tts), converted to the unit of the model's price row."""
        if direction == "stt":
            model, unit = self.stt_model, self.stt_unit
            quantity = amount / 60 if unit == "minute" else amount
            metadata = {"direction": "stt", "seconds": round(amount, 3), "unit": unit}
        else:
            model, unit = self.tts_model, self.tts_unit
            quantity = amount if unit == "character" else amount * self.tts_seconds_per_char / 60
            metadata = {"direction": "tts", "characters": int(amount), "unit": unit}
        arguments = {
            "kind": "speech",
            "model": model,
            "quantity": quantity,
            "thread_id": turn.thread_id,
            "turn_id": turn.turn_id,
            "metadata": metadata,
        }
        self._spawn(self._record(turn, arguments))

    async def _record(self, turn: Turn, arguments: dict[str, Any]) -> None:
        try:
            await self.room.invoke("usage", "record", arguments, traceparent=turn.traceparent)
        except RpcError:
            log.exception("could not record speech usage of turn %s", turn.turn_id)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _name(identity: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in identity)[:64] or "user"
