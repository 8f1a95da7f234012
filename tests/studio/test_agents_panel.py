"""The room page's Agents panel in a real Chromium, with a real agent host process: a service is
called into the room, asked through a form made from its input schema, stopped; a project owner
disables and enables a service."""

from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from agents.actions import do_create_service
from agents.models import Service
from rooms.models import Project
from tests.studio.support import SCREENSHOTS
from tests.support.servers import AgentHostProcess, ServerProcess

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def word_counter(project: Project) -> Service:
    return do_create_service(project, "word-counter", class_path="agents.demo.WordCounter")


@pytest.fixture
def agent_host(server: ServerProcess, word_counter: Service) -> Iterator[AgentHostProcess]:
    host = AgentHostProcess(server).start()
    yield host
    host.stop()


async def test_a_service_is_called_in_asked_through_its_form_and_stopped(agent_host, room_page: Page):
    agent = room_page.locator('#agents li[data-agent="word-counter"]')
    await expect(agent).to_have_attribute("data-present", "false")
    await expect(agent).to_contain_text("Counts the words and characters of a text.")
    await agent.get_by_role("button", name="Call into this room").click()
    await expect(agent).to_have_attribute("data-present", "true", timeout=20_000)
    await expect(room_page.locator('#participants li[data-identity="word-counter"]')).to_be_visible()

    await agent.locator(".agent-schema summary", has_text="Output schema").click()
    await expect(agent.locator(".agent-schema pre").nth(1)).to_contain_text('"characters"')
    await agent.get_by_role("button", name="Ask…").click()
    text = agent.get_by_label("text")
    await expect(text).to_have_value("The quick brown fox jumps over the lazy dog")  # the schema's example
    await text.fill("one two three")
    await agent.get_by_role("button", name="Ask Word counter").click()
    result = agent.locator(".agent-result")
    await expect(result).to_have_attribute("data-status", "ok")
    await expect(result).to_have_text('{\n  "words": 3,\n  "characters": 13\n}')
    await room_page.locator("#agents-panel").screenshot(path=str(SCREENSHOTS / "agents-panel.png"))

    # The form checks before asking: a required field left empty.
    await text.fill("")
    await agent.get_by_role("button", name="Ask Word counter").click()
    await expect(result).to_contain_text("text is required")

    await agent.get_by_role("button", name="Stop").click()
    await expect(room_page.locator('#participants li[data-identity="word-counter"]')).to_have_count(0, timeout=20_000)
    await expect(agent).to_have_attribute("data-present", "false")


async def test_stopping_an_agent_no_service_started_says_why(word_counter, room_page: Page):
    response = await room_page.request.post(
        "/studio/acme/lobby/agents/word-counter/stop/",
        headers={"X-CSRFToken": await csrf(room_page)},
    )
    assert response.status == 404
    assert (
        "no instance of 'word-counter' started by a service is running" in (await response.json())["error"]["message"]
    )


async def csrf(page: Page) -> str:
    cookies = await page.context.cookies()
    return next(c["value"] for c in cookies if c["name"] == "csrftoken")


async def test_a_project_owner_disables_and_enables_a_service(word_counter, room_page: Page):
    await expect(room_page.locator('#agents li[data-agent="word-counter"]')).to_be_visible()
    await room_page.locator("#services summary").click()
    row = room_page.locator('#services tr[data-service="word-counter"]')
    await expect(row).to_contain_text("every room")
    await row.get_by_role("button", name="Disable word-counter").click()
    await expect(room_page.locator("#status")).to_have_attribute("data-state", "connected")
    await room_page.locator("#services summary").click()
    await expect(row).to_contain_text("disabled")
    await expect(room_page.locator("#agents-empty")).to_be_visible()  # no longer callable
    await row.get_by_role("button", name="Enable word-counter").click()
    await expect(room_page.locator('#agents li[data-agent="word-counter"]')).to_be_visible()
