"""Forms from JSON Schema in a real Chromium: the tool invoker's generated form (nested objects,
arrays, enums, bounds, booleans, examples), its JSON view and schema, tool chips, and `ui.ask_user`
with a form answered in the page and returned to a Python agent (the client package)."""

import asyncio

import pytest
from meshsite_client import RoomClient
from playwright.async_api import Page, expect

from tests.studio.support import SCREENSHOTS, browser_participant_id, output
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e]

DEPLOY_TOOL = {
    "name": "deploy",
    "description": "Deploy a service",
    "input_schema": {
        "type": "object",
        "properties": {
            "service": {"type": "string", "minLength": 1, "description": "Which service to deploy"},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
            "region": {"type": "string", "enum": ["eu-west", "us-east"]},
            "dry_run": {"type": "boolean", "default": False},
            "limits": {
                "type": "object",
                "properties": {"cpu": {"type": "number", "exclusiveMinimum": 0}, "memory": {"type": "string"}},
                "required": ["cpu"],
            },
            "env": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    "required": ["name", "value"],
                },
            },
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["service", "region", "limits"],
        "additionalProperties": False,
        "examples": [{"service": "web", "region": "eu-west", "limits": {"cpu": 0.5}, "tags": ["blue"]}],
    },
}


async def choose(page: Page, toolkit_label: str, tool: str) -> None:
    await page.get_by_label("Toolkit", exact=True).select_option(label=toolkit_label)
    await page.get_by_label("Tool", exact=True).select_option(tool)


async def test_a_tool_is_invoked_through_its_generated_form_with_a_nested_object_and_arrays(
    room_page: Page, ws_url, mint
):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        await bob.register("ops", [DEPLOY_TOOL])
        chip = room_page.locator('#toolkits li[data-toolkit="ops"]').get_by_role("link", name="deploy")
        await chip.click()  # the chip opens the tool in the invoker
        await expect(room_page.get_by_label("Toolkit", exact=True)).to_have_value(f"ops@{bob.id}")
        await expect(room_page.get_by_label("Tool", exact=True)).to_have_value("deploy")
        form = room_page.locator("#invoke-form")

        # Pre-filled from the schema's first example, the rest from defaults.
        await expect(form.get_by_label("service")).to_have_value("web")
        await expect(form.get_by_label("service")).to_be_focused()
        await expect(form.get_by_text("Which service to deploy")).to_be_visible()
        await expect(form.get_by_label("region")).to_have_js_property("value", "0")
        await expect(form.get_by_label("replicas")).to_have_value("2")  # its default
        await expect(form.get_by_label("replicas")).to_have_attribute("max", "10")
        await expect(form.get_by_label("cpu")).to_have_value("0.5")
        await expect(form.get_by_label("tags 1")).to_have_value("blue")

        await form.get_by_label("service").fill("api")
        await form.get_by_label("region").select_option("us-east")
        await form.get_by_label("replicas").fill("3")
        await form.get_by_label("dry_run").check()
        await form.get_by_label("memory").fill("512Mi")
        await form.get_by_role("button", name="Add to env").click()
        await form.get_by_role("button", name="Add to env").click()
        await form.get_by_label("name").nth(0).fill("MODE")
        await form.get_by_label("value").nth(0).fill("fast")
        await form.get_by_label("name").nth(1).fill("DEBUG")
        await form.get_by_label("value").nth(1).fill("1")
        await form.get_by_role("button", name="Add to tags").click()
        await form.get_by_label("tags 2").fill("canary")
        await form.get_by_role("button", name="Remove item 1 of tags").click()
        await expect(form.get_by_label("tags 1")).to_have_value("canary")
        await form.get_by_role("button", name="Remove item 1 of env").click()
        await room_page.screenshot(path=str(SCREENSHOTS / "invoker-form.png"), full_page=True)

        await room_page.get_by_role("button", name="Invoke", exact=True).click()
        call = await bob.next_call()
        assert call["params"]["arguments"] == {
            "service": "api",
            "replicas": 3,
            "region": "us-east",
            "dry_run": True,
            "limits": {"cpu": 0.5, "memory": "512Mi"},
            "env": [{"name": "DEBUG", "value": "1"}],
            "tags": ["canary"],
        }
        await bob.answer(call, {"deployed": True})
        await expect(room_page.locator("#invoke-result")).to_have_attribute("data-status", "ok")


async def test_the_form_checks_bounds_and_required_fields_before_anything_is_sent(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        await bob.register("ops", [DEPLOY_TOOL])
        await choose(room_page, "ops (hosted by bob)", "deploy")
        form = room_page.locator("#invoke-form")
        await form.get_by_label("service").fill("")
        await form.get_by_label("replicas").fill("11")
        await form.get_by_label("cpu").fill("0")
        await room_page.get_by_role("button", name="Invoke", exact=True).click()
        result = room_page.locator("#invoke-result")
        await expect(result).to_have_attribute("data-status", "error")
        await expect(result).to_contain_text("service is required")
        await expect(result).to_contain_text("replicas must be at most 10")
        await expect(result).to_contain_text("limits.cpu must be more than 0")
        await expect(form.get_by_label("replicas")).to_have_attribute("aria-invalid", "true")
        await expect(form.locator('[data-path="replicas"] .sf-error')).to_have_text("must be at most 10")
        await asyncio.sleep(0.3)
        assert not [m for m in bob.inbox if m.get("method") == "tools.call"]  # nothing reached the host


async def test_the_json_view_and_the_schema_follow_the_form_both_ways(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        await bob.register("ops", [DEPLOY_TOOL])
        await choose(room_page, "ops (hosted by bob)", "deploy")
        await room_page.locator("#invoke-schema summary").click()
        await expect(room_page.locator("#invoke-schema-text")).to_contain_text('"exclusiveMinimum": 0')

        await room_page.get_by_role("radio", name="JSON").check()
        args = room_page.get_by_label("Arguments (JSON)")
        await expect(args).to_have_value(
            '{\n  "service": "web",\n  "replicas": 2,\n  "region": "eu-west",\n  "dry_run": false,\n'
            '  "limits": {\n    "cpu": 0.5\n  },\n  "tags": [\n    "blue"\n  ]\n}'
        )
        await args.fill(
            '{"service": "db", "region": "us-east", "limits": {"cpu": 2}, "env": [{"name": "A", "value": "b"}]}'
        )
        await room_page.get_by_role("radio", name="Form").check()
        form = room_page.locator("#invoke-form")
        await expect(form.get_by_label("service")).to_have_value("db")
        await expect(form.get_by_label("cpu")).to_have_value("2")
        await expect(form.get_by_label("name")).to_have_value("A")
        await expect(form.get_by_label("tags 1")).to_have_count(0)

        await room_page.get_by_role("button", name="Invoke", exact=True).click()
        call = await bob.next_call()
        assert call["params"]["arguments"] == {
            "service": "db",
            "replicas": 2,  # what the JSON left out, the form fills from defaults
            "region": "us-east",
            "dry_run": False,
            "limits": {"cpu": 2},
            "env": [{"name": "A", "value": "b"}],
        }
        await bob.answer(call, {"deployed": True})


ISSUE_FORM = {
    "type": "object",
    "title": "New issue",
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "severity": {"type": "string", "enum": ["low", "high"], "default": "low"},
        "steps": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "reporter": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}},
        "urgent": {"type": "boolean", "default": False},
    },
    "required": ["title", "steps"],
}


async def test_a_python_agent_asks_with_a_json_schema_form_and_gets_what_the_person_filled_in(
    room_page: Page, ws_url, mint
):
    async with RoomClient(ws_url("lobby"), mint("robot", role="agent", name="Robot")) as robot:
        browser = next(p for p in robot.participants.values() if p.identity == "studio-admin")
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user",
                {"question": "Tell me about the bug", "schema": ISSUE_FORM},
                participant_id=browser.id,
                timeout=60,
            )
        )
        dialog = room_page.get_by_role("dialog", name="Tell me about the bug")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Robot asks:")
        await dialog.get_by_label("title").fill("ab")
        await dialog.get_by_role("button", name="Send").click()
        # Checked in the page first: too short, and a required list left empty.
        await expect(dialog.locator('[data-path="title"] .sf-error')).to_have_text("must be at least 3 characters")
        await expect(dialog.locator('[data-path="steps"] > .sf-error')).to_have_text("needs at least 1 item(s)")
        assert not asking.done()

        await dialog.get_by_label("title").fill("Login fails")
        await dialog.get_by_label("severity").select_option("high")
        await dialog.get_by_role("button", name="Add to steps").click()
        await dialog.get_by_label("steps 1").fill("open /login")
        await dialog.get_by_role("button", name="Add to steps").click()
        await dialog.get_by_label("steps 2").fill("press Enter")
        await dialog.get_by_label("email").fill("ann@example.com")
        await dialog.get_by_label("urgent").check()
        await room_page.screenshot(path=str(SCREENSHOTS / "ask-user-form.png"), full_page=True)
        await dialog.get_by_role("button", name="Send").click()
        assert await asyncio.wait_for(asking, 10) == {
            "answer": {
                "title": "Login fails",
                "severity": "high",
                "steps": ["open /login", "press Enter"],
                "reporter": {"email": "ann@example.com"},
                "urgent": True,
            }
        }
        await expect(dialog).to_have_count(0)


async def test_ask_user_without_a_form_still_answers_with_text(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        asking = asyncio.create_task(
            robot.invoke(
                "ui", "ask_user", {"question": "Name?"}, participant_id=browser_participant_id(robot), timeout=30
            )
        )
        dialog = room_page.get_by_role("dialog", name="Name?")
        await dialog.get_by_label("Your answer").fill("Ann")
        await dialog.get_by_role("button", name="Answer").click()
        assert output(await asking) == {"answer": "Ann"}


async def test_a_python_agent_asks_for_a_file_and_reads_the_upload_back_from_room_storage(
    room_page: Page, ws_url, mint, tmp_path
):
    report = tmp_path / "report.csv"
    report.write_text("region,total\neu,42\n")
    async with RoomClient(ws_url("lobby"), mint("robot", role="agent", name="Robot")) as robot:
        browser = next(p for p in robot.participants.values() if p.identity == "studio-admin")
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user_file",
                {"question": "Which report should I read?", "accept": ".csv"},
                participant_id=browser.id,
                timeout=60,
            )
        )
        dialog = room_page.get_by_role("dialog", name="Which report should I read?")
        await expect(dialog).to_be_visible()
        await expect(dialog.get_by_label("File")).to_have_attribute("accept", ".csv")
        await dialog.get_by_role("button", name="Upload").click()
        await expect(dialog.get_by_role("status")).to_have_text("Choose a file first.")
        await dialog.get_by_label("File").set_input_files(str(report))
        await room_page.screenshot(path=str(SCREENSHOTS / "ask-user-file.png"), full_page=True)
        await dialog.get_by_role("button", name="Upload").click()
        answer = await asyncio.wait_for(asking, 15)
        file = answer["file"]
        assert file["name"] == "report.csv"
        assert file["path"].startswith("users/studio-admin/uploads/") and file["path"].endswith("-report.csv")
        assert (file["size"], file["content_type"], file["written_by"]) == (19, "text/csv", "studio-admin")
        await expect(dialog).to_have_count(0)

        # The agent reads what the person uploaded from the room's storage.
        read = await robot.invoke("storage", "read", {"path": file["path"]})
        assert read["text"] == "region,total\neu,42\n"
        assert read["file"]["sha256"] == file["sha256"]


async def test_declining_a_file_question_fails_the_call(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        asking = asyncio.create_task(
            robot.invoke(
                "ui",
                "ask_user_file",
                {"question": "Send me a photo?"},
                participant_id=browser_participant_id(robot),
                timeout=30,
            )
        )
        dialog = room_page.get_by_role("dialog", name="Send me a photo?")
        await dialog.get_by_role("button", name="Decline").click()
        error = (await asking)["error"]
        assert error["data"]["message"] == "the person declined to answer"
