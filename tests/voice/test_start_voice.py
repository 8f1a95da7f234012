"""Studio's "start a voice conversation": the LiveKit room is created through the real
`livekit-api` client against a local Twirp server, the VoiceBot service is dispatched into the
Meshsite room with its own LiveKit token, and the page gets its token and the URL."""

import json

import jwt
import pytest
from django.test import Client
from django.urls import reverse

from agents.models import Dispatch

pytestmark = pytest.mark.django_db(transaction=True)


def start(client: Client, body: dict | str, project: str = "acme", room: str = "lobby"):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(reverse("voice-start", args=[project, room]), data, content_type="application/json")


@pytest.fixture
def as_alice(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_it_creates_the_livekit_room_dispatches_the_voicebot_and_returns_the_pages_token(
    as_alice, livekit_config, voicebot_service, alices_tab, fake_livekit
):
    response = start(as_alice, {"participant_id": alices_tab.id})
    assert response.status_code == 200, response.content
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["url"] == livekit_config.url and body["identity"] == "studio-alice"
    assert body["room"].startswith("acme--lobby--")

    # the LiveKit room, created with a token only the server holds (roomCreate), protobuf on the wire
    create = fake_livekit.calls[0]
    assert (create.method, create.status, create.content_type) == ("CreateRoom", 200, "application/protobuf")
    assert create.request.name == body["room"] and create.request.empty_timeout == 300
    # (livekit-api's VideoGrants default to publish/subscribe flags, which mean nothing without roomJoin)
    assert create.claims["iss"] == livekit_config.api_key and create.claims["video"]["roomCreate"] is True
    assert not create.claims["video"].get("roomJoin") and not create.claims["video"].get("roomAdmin")
    assert body["room"] in fake_livekit.rooms

    page = jwt.decode(body["token"], livekit_config.api_secret, algorithms=["HS256"])
    assert page["sub"] == "studio-alice" and page["video"]["room"] == body["room"]
    assert page["video"]["canPublishSources"] == ["microphone"] and not page["video"]["canPublishData"]

    dispatch = Dispatch.objects.get(pk=body["dispatch_id"])
    assert (dispatch.service.name, dispatch.room.name, dispatch.status) == ("voicebot", "lobby", "queued")
    arguments = dispatch.arguments
    assert arguments["asker"] == {"participant_id": alices_tab.id, "identity": "studio-alice", "role": "user"}
    assert arguments["livekit_url"] == livekit_config.url and arguments["livekit_room"] == body["room"]
    bot = jwt.decode(arguments["livekit_token"], livekit_config.api_secret, algorithms=["HS256"])
    assert (bot["sub"], bot["kind"], bot["video"]["room"]) == ("voicebot", "agent", body["room"])


def test_the_room_list_reaches_the_server_api_with_a_room_admin_token(livekit_config, fake_livekit):
    from asgiref.sync import async_to_sync

    from voice.livekit_server import participants

    fake_livekit.participants["acme--lobby--1"] = ["studio-alice", "voicebot"]
    assert async_to_sync(participants)(livekit_config, "acme--lobby--1") == ["studio-alice", "voicebot"]
    listed = fake_livekit.calls[-1]
    video = listed.claims["video"]
    assert (video["roomAdmin"], video["room"], video.get("roomJoin", False)) == (True, "acme--lobby--1", False)


def test_without_a_livekit_server_it_says_where_to_configure_one(as_alice, acme, voicebot_service, alices_tab):
    response = start(as_alice, {"participant_id": alices_tab.id})
    assert response.status_code == 409 and "admin" in response.json()["error"]
    assert not Dispatch.objects.exists()


def test_a_livekit_server_that_refuses_is_a_clear_502(as_alice, livekit_config, voicebot_service, alices_tab):
    livekit_config.api_secret = "not-the-secret-the-server-knows-32chars"
    livekit_config.save()
    response = start(as_alice, {"participant_id": alices_tab.id})
    assert response.status_code == 502 and "invalid token" in response.json()["error"]
    assert not Dispatch.objects.exists()


def test_an_unreachable_livekit_server_is_a_clear_502(as_alice, livekit_config, voicebot_service, alices_tab):
    livekit_config.url = "ws://127.0.0.1:9"
    livekit_config.save()
    response = start(as_alice, {"participant_id": alices_tab.id})
    assert response.status_code == 502 and "could not be reached" in response.json()["error"]


def test_without_the_voicebot_service_it_says_so(as_alice, livekit_config, alices_tab):
    response = start(as_alice, {"participant_id": alices_tab.id})
    assert response.status_code == 409 and "voicebot" in response.json()["error"]


def test_a_second_conversation_while_the_bot_is_there_is_refused(
    as_alice, livekit_config, voicebot_service, alices_tab
):
    assert start(as_alice, {"participant_id": alices_tab.id}).status_code == 200
    second = start(as_alice, {"participant_id": alices_tab.id})
    assert second.status_code == 409 and "already" in second.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("not json", 400, "JSON"),
        ("[1]", 400, "object"),
        ({}, 400, "participant_id is required"),
        ({"participant_id": "pt_someone_else"}, 400, "not your participant"),
    ],
)
def test_bad_requests_get_a_reason(as_alice, livekit_config, voicebot_service, alices_tab, body, status, says):
    response = start(as_alice, body)
    assert response.status_code == status and says in response.json()["error"]


def test_a_thread_of_another_room_is_refused(as_alice, livekit_config, voicebot_service, alices_tab):
    response = start(as_alice, {"participant_id": alices_tab.id, "thread_id": "th_nope"})
    assert response.status_code == 400 and "thread" in response.json()["error"]


def test_someone_elses_project_is_not_found_and_anonymous_is_sent_to_log_in(
    charlie, livekit_config, voicebot_service, alices_tab
):
    client = Client()
    assert start(client, {}).status_code == 302
    client.force_login(charlie)
    assert start(client, {"participant_id": alices_tab.id}).status_code == 404


def test_only_post_is_allowed(as_alice, livekit_config):
    assert as_alice.get(reverse("voice-start", args=["acme", "lobby"])).status_code == 405
