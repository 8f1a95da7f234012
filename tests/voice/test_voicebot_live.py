"""The VoiceBot end to end: a real daphne server, real WebSocket participants, a real VAD fed speech
synthesised by espeak-ng through the in-memory transport, and the STT/LLM/TTS boundary played by
`FakeOpenAI` (its wire format, driven through the `openai` client)."""

import asyncio
import time
from decimal import Decimal

import pytest
from meshsite_client.agents.voicebot import VoiceBot
from meshsite_client.errors import MeshError
from meshsite_client.voice import MemoryTransport

from observability.models import ModelPrice, UsageRecord
from tests.agents_client.live import running
from tests.agents_client.test_chatbot_scenarios import UI_TOOLKIT, db, eventually, turn_event
from tests.support.fake_openai import FakeOpenAI, ToolCall, fake_openai
from tests.support.peer import ADD_TOOL, RawPeer
from tests.voice.spoken import silence, speech_pcm, spoken_frames

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
__all__ = ["fake_openai"]

QUESTION = "What is two plus three?"


def voicebot(fake: FakeOpenAI, transport: MemoryTransport, **config) -> VoiceBot:
    return VoiceBot(
        name="voicebot",
        title="Voice",
        model="gpt-test",
        api_key="sk-test",
        base_url=fake.base_url,
        tool_toolkits=["calc"],
        transport=transport,
        **config,
    )


def with_call(bot: VoiceBot, alice: RawPeer, thread_id: str) -> VoiceBot:
    # what the server's dispatch passes (voice/views.py); the transport stands in for LiveKit
    bot.call_arguments = {"thread_id": thread_id, "asker": {"participant_id": alice.id, "identity": "alice"}}
    return bot


async def new_thread(alice: RawPeer) -> str:
    created = await alice.invoke("threads", "create", {"title": "Voice"})
    return str(created["result"]["output"]["thread"]["id"])


def message_from(name: str):
    return lambda m: m.get("method") == "threads.message" and m["params"]["message"]["author"]["identity"] == name


async def test_a_spoken_question_calls_a_tool_and_the_spoken_answer_lands_in_the_thread_and_the_ledger(
    ws_url, mint, fake_openai, project
):
    await db(lambda: ModelPrice.objects.create(model="gpt-test", kind="llm", input_per_million=Decimal("1")))
    # observability's seeded speech prices (a transactional test before this one flushes them)
    await db(lambda: ModelPrice.objects.create(model="whisper-1", kind="speech", unit_price=Decimal("0.006")))
    await db(lambda: ModelPrice.objects.create(model="tts-1", kind="speech", unit_price=Decimal("0.000015")))
    fake_openai.transcribe(QUESTION)
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 2, "b": 3})], usage=(40, 8))
    fake_openai.reply("It is five. Anything else?", usage=(60, 7))
    transport = MemoryTransport()
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        thread_id = await new_thread(alice)
        bot = with_call(voicebot(fake_openai, transport), alice, thread_id)
        async with running(bot, ws_url("lobby"), mint("voicebot", role="agent", agent="voicebot")):
            await transport.feed(silence(0.3) + spoken_frames(QUESTION) + silence(0.8))
            question = await alice.expect(message_from("voicebot"), 15)
            part = question["params"]["message"]["parts"][0]
            assert part["text"] == QUESTION
            assert part["spoken_by"] == {"participant_id": alice.id, "identity": "alice"}

            call = await bob.next_call(timeout=15)
            assert call["params"]["arguments"] == {"a": 2, "b": 3}
            await bob.answer(call, 5)
            answer = await alice.expect(message_from("voicebot"), 15)
            ended = await alice.expect(turn_event("ended"), 10)
            assert ended["params"]["data"]["status"] == "ok"

    text, tool_call = answer["params"]["message"]["parts"]
    assert text == {"type": "text", "text": "It is five. Anything else?"}
    assert (tool_call["toolkit"], tool_call["tool"], tool_call["result"]) == ("calc", "add", 5)

    # the transcriber got the utterance the VAD cut: about the spoken question's length, as a WAV
    heard = fake_openai.audio_received[0]
    spoken = len(speech_pcm(QUESTION)) / 2 / 48_000
    assert heard.sample_rate == 16_000 and spoken <= heard.seconds <= spoken + 0.9
    # the answer went out as speech: 20 ms frames at 48 kHz, as long as the fake's tone for each sentence
    speech = [r for r in fake_openai.requests if r.path.endswith("/audio/speech")]
    assert [r.body["input"] for r in speech] == ["It is five.", "Anything else?"]
    assert {(p.frame.sample_rate, p.frame.samples) for p in transport.played} == {(48_000, 960)}
    played = len(transport.played) * 0.02
    expected = len("It is five.Anything else?") * fake_openai.speech_seconds_per_char
    assert expected <= played <= expected + 0.05
    # the model saw the person's words as theirs, and the voice rule
    first = fake_openai.chat_requests[0].messages
    assert "out loud" in first[0]["content"]
    assert first[-1] == {"role": "user", "content": QUESTION, "name": "alice"}

    records = await eventually(
        lambda: list(UsageRecord.objects.filter(project=project).order_by("id")),
        lambda rows: len(rows) >= 5,
    )
    by_kind = sorted((r.kind, r.model, r.metadata.get("direction", "")) for r in records)
    assert by_kind == [
        ("llm", "gpt-test", ""),
        ("llm", "gpt-test", ""),
        ("speech", "tts-1", "tts"),
        ("speech", "tts-1", "tts"),
        ("speech", "whisper-1", "stt"),
    ]
    stt = next(r for r in records if r.model == "whisper-1")
    assert stt.quantity == pytest.approx(heard.seconds / 60, abs=1e-3) and stt.priced and stt.cost > 0
    tts = sorted(r.quantity for r in records if r.model == "tts-1")
    assert tts == [len("It is five."), len("Anything else?")]
    assert all(r.priced for r in records)
    assert len({r.turn_id for r in records}) == 1 and len({r.trace_id for r in records}) == 1
    assert {r.thread_id for r in records} == {thread_id}


async def test_speaking_over_the_answer_stops_playback_and_keeps_only_what_was_said(ws_url, mint, fake_openai):
    fake_openai.transcribe(QUESTION, "Stop")
    long_answer = "Here is a long answer. " * 6
    fake_openai.reply(long_answer)
    transport = MemoryTransport()
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        thread_id = await new_thread(alice)
        bot = with_call(voicebot(fake_openai, transport), alice, thread_id)
        async with running(bot, ws_url("lobby"), mint("voicebot", role="agent", agent="voicebot")):
            await transport.feed(silence(0.3) + spoken_frames(QUESTION) + silence(0.8))
            await alice.expect(message_from("voicebot"), 15)  # the transcript
            await asyncio.wait_for(_until(lambda: len(transport.played) >= 25), 10)  # half a second heard
            sent = await transport.feed(spoken_frames("Stop talking please") + silence(0.8))
            answer = await alice.expect(message_from("voicebot"), 15)
            ended = await alice.expect(turn_event("ended"), 10)
            assert ended["params"]["data"]["status"] == "interrupted"
            assert bot.loop is not None
            barge_in = bot.loop.metrics.barge_ins[0]
            stopped = bot.loop.metrics.stopped_at[0]
            # measured from the interrupting speech's first frame, as the test sent it
            assert barge_in.speech_at >= sent[0] and stopped - sent[0] < 0.5
            # nothing was handed to the listener after playback stopped, and the rest was dropped
            assert all(p.sent_at <= stopped for p in transport.played)
            said = answer["params"]["message"]["parts"][0]["text"]
            assert said.startswith("Here is a long answer.") and said.endswith("…")
            assert len(said) < len(long_answer)


async def test_approval_for_a_voice_tool_call_is_asked_in_the_persons_tab(ws_url, mint, fake_openai):
    fake_openai.transcribe(QUESTION)
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 2, "b": 3})])
    fake_openai.reply("I did not add them.")
    transport = MemoryTransport()
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register("calc", [ADD_TOOL])
        await alice.register("ui", UI_TOOLKIT, public=False)
        thread_id = await new_thread(alice)
        bot = with_call(voicebot(fake_openai, transport, approvals=["calc.*"]), alice, thread_id)
        async with running(bot, ws_url("lobby"), mint("voicebot", role="agent", agent="voicebot")):
            await transport.feed(silence(0.3) + spoken_frames(QUESTION) + silence(0.8))
            ask = await alice.next_call(timeout=15)
            assert ask["params"]["toolkit"] == "ui" and "calc.add" in ask["params"]["arguments"]["question"]
            await alice.answer(ask, {"answer": "Deny"})
            await alice.expect(message_from("voicebot"), 15)  # the transcript
            answer = await alice.expect(message_from("voicebot"), 15)
    refused = answer["params"]["message"]["parts"][1]
    assert (refused["status"], refused["refused_by"]) == ("refused", "alice")


async def _until(condition, interval: float = 0.01) -> None:
    deadline = time.monotonic() + 30
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(interval)


async def test_when_the_person_hangs_up_the_voicebot_leaves_the_room(ws_url, mint, fake_openai):
    transport = MemoryTransport()
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        thread_id = await new_thread(alice)
        bot = with_call(voicebot(fake_openai, transport), alice, thread_id)
        async with running(bot, ws_url("lobby"), mint("voicebot", role="agent", agent="voicebot")) as handle:
            voicebot_id = bot.room.participant.id
            await transport.close()  # what LiveKitTransport does when the last person left
            left = await alice.expect(
                lambda m: m.get("method") == "participant.left" and m["params"]["participant_id"] == voicebot_id, 10
            )
            assert left is not None
            await asyncio.wait_for(handle.task, 10)  # run_agent returned: the bot is gone
        assert not bot.started


async def test_a_voicebot_started_for_someone_not_in_the_room_refuses_to_start(ws_url, mint, fake_openai):
    bot = voicebot(fake_openai, MemoryTransport())
    bot.call_arguments = {"asker": {"participant_id": "p_nobody", "identity": "alice"}}
    with pytest.raises(MeshError, match="not in the room"):
        async with running(bot, ws_url("lobby"), mint("voicebot", role="agent", agent="voicebot")):
            pass


SHOW_TOAST = {
    "name": "show_toast",
    "description": "Show a short message in this tab",
    "input_schema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
}


async def test_a_voice_turn_can_show_a_toast_in_the_persons_own_tab(ws_url, mint, fake_openai):
    fake_openai.transcribe("Remind me to stretch")
    fake_openai.reply(tool_calls=[ToolCall("ui__show_toast", {"message": "Stretch!"})])
    fake_openai.reply("Done.")
    transport = MemoryTransport()
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        await alice.register("ui", [SHOW_TOAST, *UI_TOOLKIT], public=False)
        thread_id = await new_thread(alice)
        bot = with_call(voicebot(fake_openai, transport), alice, thread_id)
        async with running(bot, ws_url("lobby"), mint("voicebot", role="agent", agent="voicebot")):
            await transport.feed(silence(0.3) + spoken_frames("Remind me to stretch") + silence(0.8))
            toast = await alice.next_call(timeout=15)
            assert (toast["params"]["toolkit"], toast["params"]["tool"]) == ("ui", "show_toast")
            assert toast["params"]["arguments"] == {"message": "Stretch!"}
            await alice.answer(toast, {"shown": True})
            await alice.expect(message_from("voicebot"), 15)  # the transcript
            answer = await alice.expect(message_from("voicebot"), 15)
    assert answer["params"]["message"]["parts"][1]["status"] == "ok"
    # only the asker's own `ui` was offered, beside nothing else (no public toolkit matched)
    assert {t["function"]["name"] for t in fake_openai.chat_requests[0].tools} == {"ui__show_toast", "ui__ask_user"}
