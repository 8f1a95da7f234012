"""LiveKit access tokens minted through `livekit-api`, decoded as LiveKit would decode them."""

import time

import jwt
import pytest

from voice.livekit_server import access_token
from voice.models import LiveKitConfig

pytestmark = pytest.mark.django_db


def decode(config: LiveKitConfig, token: str) -> dict:
    return jwt.decode(token, config.api_secret, algorithms=["HS256"], options={"verify_aud": False})


@pytest.mark.parametrize("kind", ["person", "agent"])
def test_a_token_joins_one_room_to_speak_and_listen_and_nothing_else(livekit_config, kind):
    grant = access_token(livekit_config, room="acme--lobby--1234", identity="studio-alice", name="alice", kind=kind)
    claims = decode(livekit_config, grant.token)
    assert claims["iss"] == livekit_config.api_key and claims["sub"] == "studio-alice"
    assert claims["name"] == "alice"
    assert claims["video"] == {
        "roomJoin": True,
        "room": "acme--lobby--1234",
        "canPublish": True,
        "canPublishSources": ["microphone"],
        "canSubscribe": True,
        "canPublishData": False,
        "canUpdateOwnMetadata": False,
    }
    assert claims.get("kind", "standard") == ("agent" if kind == "agent" else "standard")


def test_a_token_lives_as_long_as_the_project_says(livekit_config):
    livekit_config.token_ttl = 120
    before = int(time.time())
    grant = access_token(livekit_config, room="r", identity="bot", name="Bot", kind="agent")
    claims = decode(livekit_config, grant.token)
    assert before + 120 <= claims["exp"] <= int(time.time()) + 120 and claims["nbf"] <= int(time.time())
    assert grant.ttl == 120


def test_a_token_signed_with_another_secret_is_refused(livekit_config):
    grant = access_token(livekit_config, room="r", identity="bot", name="Bot", kind="agent")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(grant.token, "another-secret-that-is-long-enough-32", algorithms=["HS256"])
