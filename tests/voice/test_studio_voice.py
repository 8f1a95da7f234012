"""The Voice panel of the Studio room page in Chromium: "Start talking" asks the server for a
conversation (LiveKit room created at the local Twirp server, VoiceBot dispatched for this tab's
participant), then the vendored LiveKit browser client dials the LiveKit URL. No LiveKit media
server runs here, so joining fails, and the panel says so."""

import pytest
from playwright.async_api import Page, expect

from agents.actions import do_create_service
from agents.models import Dispatch
from tests.agents_client.test_chatbot_scenarios import db
from tests.voice.fake_livekit import FakeLiveKit
from voice.models import LiveKitConfig

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

VOICEBOT = "meshsite_client.agents.voicebot.VoiceBot"


async def voice_panel(page: Page) -> None:
    if not await page.locator("#voice-panel").count():
        pytest.fail("templates/studio/room.html must include voice/voice_panel.html", pytrace=False)


async def test_start_talking_creates_the_room_dispatches_the_bot_and_dials_livekit(room_page: Page, project):
    await voice_panel(room_page)
    livekit = FakeLiveKit().start()
    try:
        await db(
            lambda: LiveKitConfig.objects.create(
                project=project, url=livekit.url, api_key=livekit.api_key, api_secret=livekit.api_secret
            )
        )
        await db(lambda: do_create_service(project, "voicebot", class_path=VOICEBOT))
        await room_page.wait_for_function("() => window.LivekitClient && window.LivekitClient.version === '2.23.0'")
        participant_id = await room_page.locator("#room").get_attribute("data-participant-id")
        await room_page.locator("#voice-start").click()
        status = room_page.locator("#voice-status")
        await expect(status).to_have_attribute("data-state", "error", timeout=30_000)
        await expect(status).to_contain_text(f"Could not join the LiveKit room at {livekit.url}")
        assert [c.method for c in livekit.calls] == ["CreateRoom"]
        dispatch = await db(lambda: Dispatch.objects.get(service__name="voicebot"))
        assert dispatch.arguments["asker"]["participant_id"] == participant_id
        await expect(room_page.locator("#voice-start")).to_be_visible()
    finally:
        livekit.stop()


async def test_without_a_livekit_server_the_panel_says_what_to_configure(room_page: Page):
    await voice_panel(room_page)
    await room_page.locator("#voice-start").click()
    status = room_page.locator("#voice-status")
    await expect(status).to_have_attribute("data-state", "error")
    await expect(status).to_contain_text("No LiveKit server is configured for this project")
