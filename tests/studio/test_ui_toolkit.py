"""The private `ui` toolkit a Studio tab hosts: Python peers show the person toasts and ask them
questions in their browser, through the real server."""

import asyncio

import pytest
from meshsite_client.protocol import ErrorCode
from playwright.async_api import Page, expect

from tests.studio.support import IDENTITY, browser_participant_id, output
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e]


async def test_the_ui_toolkit_is_private_and_listed_for_the_browser_participant(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        browser_id = browser_participant_id(robot)
        listed = await robot.result("toolkits.list", {"participant_id": browser_id})
        [ui] = listed["toolkits"]
        assert ui["name"] == "ui" and ui["public"] is False
        assert ui["participant_identity"] == IDENTITY
        # ask_user_file too: this server has room storage (the files app) to keep the files in.
        assert {tool["name"] for tool in ui["tools"]} == {"show_toast", "ask_user", "ask_user_file"}
        refused = await robot.invoke("ui", "show_toast", {"message": "hi"})
        assert refused["error"]["code"] == ErrorCode.PERMISSION_DENIED


async def test_an_agent_shows_a_toast_in_the_persons_browser(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent", name="Robot")) as robot:
        response = await robot.invoke(
            "ui",
            "show_toast",
            {"message": "Your report is ready", "level": "success"},
            participant_id=browser_participant_id(robot),
        )
        assert output(response) == {"shown": True}
        toast = room_page.locator(".mesh-toast")
        await expect(toast).to_be_visible()
        await expect(toast).to_have_attribute("data-level", "success")
        await expect(toast).to_contain_text("Your report is ready")
        await expect(toast).to_contain_text("from Robot")
        await toast.get_by_role("button", name="Dismiss").click()
        await expect(toast).to_have_count(0)


async def test_the_server_refuses_a_toast_without_a_message_before_it_reaches_the_browser(
    room_page: Page, ws_url, mint
):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        response = await robot.invoke(
            "ui", "show_toast", {"level": "info"}, participant_id=browser_participant_id(robot)
        )
        assert response["error"]["code"] == ErrorCode.INVALID_ARGUMENTS
        await expect(room_page.locator(".mesh-toast")).to_have_count(0)


async def test_an_agent_asks_the_person_a_question_and_gets_the_choice_they_click(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent", name="Robot")) as robot:
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user",
                {"question": "Deploy to production?", "choices": ["Yes", "Not yet"]},
                participant_id=browser_participant_id(robot),
                timeout=30,
            )
        )
        dialog = room_page.get_by_role("dialog", name="Deploy to production?")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Robot asks:")
        await dialog.get_by_role("button", name="Not yet").click()
        assert output(await asking) == {"answer": "Not yet"}
        await expect(dialog).to_have_count(0)


async def test_an_agent_asks_an_open_question_and_gets_the_text_the_person_types(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user",
                {"question": "What should the report be called?"},
                participant_id=browser_participant_id(robot),
                timeout=30,
            )
        )
        dialog = room_page.get_by_role("dialog", name="What should the report be called?")
        await dialog.get_by_label("Your answer").fill("Quarterly numbers")
        await dialog.get_by_role("button", name="Answer").click()
        assert output(await asking) == {"answer": "Quarterly numbers"}
        await expect(dialog).to_have_count(0)


async def test_declining_a_question_fails_the_call_as_tool_failed(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user",
                {"question": "May I read your mail?", "choices": ["Yes"]},
                participant_id=browser_participant_id(robot),
                timeout=30,
            )
        )
        dialog = room_page.get_by_role("dialog", name="May I read your mail?")
        await dialog.get_by_role("button", name="Decline").click()
        error = (await asking)["error"]
        assert error["code"] == ErrorCode.TOOL_FAILED
        assert error["data"]["message"] == "the person declined to answer"
        await expect(dialog).to_have_count(0)


async def test_a_cancelled_question_disappears_from_the_page(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user",
                {"question": "Still there?", "choices": ["Yes"]},
                participant_id=browser_participant_id(robot),
                call_id="ask-1",
                timeout=30,
            )
        )
        dialog = room_page.get_by_role("dialog", name="Still there?")
        await expect(dialog).to_be_visible()
        assert await robot.result("tools.cancel", {"call_id": "ask-1"}) == {"cancelled": True}
        assert (await asking)["error"]["code"] == ErrorCode.CANCELLED
        await expect(dialog).to_have_count(0)


async def test_a_question_that_times_out_disappears_from_the_page(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user",
                {"question": "Quick, yes or no?", "choices": ["Yes", "No"]},
                participant_id=browser_participant_id(robot),
                timeout=2,
            )
        )
        dialog = room_page.get_by_role("dialog", name="Quick, yes or no?")
        await expect(dialog).to_be_visible()
        assert (await asking)["error"]["code"] == ErrorCode.TIMEOUT
        await expect(dialog).to_have_count(0)
