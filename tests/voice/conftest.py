from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from agents.actions import do_create_service
from rooms.actions.participants import do_join
from rooms.actions.projects import do_create_project
from rooms.actions.rooms import do_create_room
from rooms.models import Participant, Project
from rooms.tokens import mint_token, verify_token
from tests.studio.conftest import browser, new_page, room_page, superuser  # noqa: F401 (Chromium fixtures)
from tests.voice.fake_livekit import FakeLiveKit
from voice.models import LiveKitConfig


@pytest.fixture
def fake_livekit() -> Iterator[FakeLiveKit]:
    server = FakeLiveKit().start()
    yield server
    server.stop()


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", password="pw-alice")


@pytest.fixture
def charlie(db: None) -> User:
    return User.objects.create_user("charlie", password="pw-charlie")


@pytest.fixture
def acme(alice: User) -> Project:
    return do_create_project("acme", "Acme", owner=alice)


@pytest.fixture
def livekit_config(acme: Project, fake_livekit: FakeLiveKit) -> LiveKitConfig:
    return LiveKitConfig.objects.create(
        project=acme, url=fake_livekit.url, api_key=fake_livekit.api_key, api_secret=fake_livekit.api_secret
    )


@pytest.fixture
def voicebot_service(acme: Project) -> object:
    return do_create_service(acme, "voicebot", class_path="meshsite_client.agents.voicebot.VoiceBot")


@pytest.fixture
def alices_tab(acme: Project) -> Participant:
    """Alice's Studio page, connected to the lobby (as the page's WebSocket would have joined)."""
    room = do_create_room(acme, "lobby")
    token, _ = mint_token(project="acme", room="lobby", identity="studio-alice", role="user")
    return do_join(room, verify_token(token), "node-test")
