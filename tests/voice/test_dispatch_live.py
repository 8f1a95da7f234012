"""The dispatch path for real: Studio's start endpoint queues the VoiceBot service, a real agent
host process claims it, the VoiceBot joins the Meshsite room over its WebSocket (and finds the
person's tab there) and then dials the LiveKit URL it was given. No LiveKit media server runs here
(the fake only speaks the server API), so the VoiceBot's LiveKit connection is refused, and the
dispatch ends saying so."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from agents.models import Dispatch
from rooms.models import Participant
from rooms.tokens import mint_token
from tests.agents_client.test_chatbot_scenarios import db, eventually
from tests.support.peer import RawPeer
from tests.support.servers import AgentHostProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_a_started_conversation_brings_the_voicebot_to_the_livekit_room_it_was_given(
    server, ws_url, alice, livekit_config, voicebot_service, fake_livekit
):
    token, _ = mint_token(project="acme", room="lobby", identity="studio-alice", role="user")
    async with await RawPeer.connect(ws_url("lobby"), token) as tab:

        def start() -> dict:
            client = Client()
            client.force_login(alice)
            response = client.post(
                reverse("voice-start", args=["acme", "lobby"]),
                json.dumps({"participant_id": tab.id}),
                content_type="application/json",
            )
            assert response.status_code == 200, response.content
            return dict(response.json())

        started = await db(start)
        host = AgentHostProcess(server).start()
        try:
            dispatch = await eventually(
                lambda: Dispatch.objects.get(pk=started["dispatch_id"]),
                lambda d: d.status in ("failed", "stopped"),
                timeout=60,
            )
            # it joined the Meshsite room as the vouched voicebot agent, started (its thread), then
            # LiveKit refused it and it left
            thread = await tab.expect(lambda m: m.get("method") == "threads.created", 5)
            left = await tab.expect(
                lambda m: m.get("method") == "participant.left" and m["params"]["identity"] == "voicebot", 5
            )
        finally:
            host.stop()
    assert dispatch.status == "failed", host.log()
    assert dispatch.error.startswith("ConnectError") and "signal" in dispatch.error
    assert thread["params"]["thread"]["created_by"] == "voicebot"
    participant = await db(lambda: Participant.objects.get(id=left["params"]["participant_id"]))
    assert participant.agent == "voicebot" and participant.left_at is not None
    assert [c.method for c in fake_livekit.calls] == ["CreateRoom"]
