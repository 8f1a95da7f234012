"""The LiveKit server in the admin: the secret is write-only."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from voice.models import LiveKitConfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def test_the_secret_is_never_shown_and_kept_when_left_empty(admin_client_, livekit_config):
    url = reverse("admin:voice_livekitconfig_change", args=[livekit_config.pk])
    page = admin_client_.get(url)
    assert page.status_code == 200 and livekit_config.api_secret not in page.content.decode()
    form = {
        "project": livekit_config.project_id,
        "url": "wss://livekit.example.com",
        "api_key": livekit_config.api_key,
        "api_secret": "",
        "token_ttl": 300,
        "voicebot_service": "voicebot",
        "enabled": "on",
    }
    assert admin_client_.post(url, form).status_code == 302
    livekit_config.refresh_from_db()
    assert (livekit_config.url, livekit_config.token_ttl) == ("wss://livekit.example.com", 300)
    assert livekit_config.api_secret == "fake-secret-with-at-least-32-characters"
    assert livekit_config.api_url == "https://livekit.example.com"


def test_a_new_server_needs_a_secret_and_a_real_url(admin_client_, acme):
    form = {"project": acme.pk, "url": "livekit.example.com", "api_key": "K", "api_secret": "", "token_ttl": 600}
    page = admin_client_.post(reverse("admin:voice_livekitconfig_add"), {**form, "voicebot_service": "voicebot"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "The API secret is required." in text and "starting with wss://" in text
    assert not LiveKitConfig.objects.exists()
