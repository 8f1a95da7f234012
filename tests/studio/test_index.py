"""The Studio index: signed-in people see the rooms of their projects and open one by name."""

import pytest
from playwright.async_api import Page, expect

from tests.studio.support import IDENTITY, log_in

pytestmark = [pytest.mark.e2e]


async def test_the_studio_needs_a_signed_in_user(new_page: Page, server, superuser):
    await new_page.goto("/studio/acme/lobby/")
    await expect(new_page).to_have_url(f"{server.http_url}/login/?next=/studio/acme/lobby/")


async def test_the_index_opens_a_room_by_name_and_then_lists_it(new_page: Page, server, superuser, mint):
    await log_in(new_page, server, "/")
    await expect(new_page.get_by_role("heading", name="Rooms")).to_be_visible()
    await new_page.get_by_label("Project", exact=True).select_option("acme")
    await new_page.get_by_label("Room", exact=True).fill("standup")
    await new_page.get_by_role("button", name="Open").click()
    await expect(new_page).to_have_url(f"{server.http_url}/studio/acme/standup/")
    await expect(new_page.locator("#status")).to_contain_text(f"Connected as {IDENTITY}")

    await new_page.goto("/")
    await expect(new_page.get_by_role("link", name="standup")).to_have_attribute("href", "/studio/acme/standup/")


async def test_a_link_with_an_invalid_room_name_shows_the_rule_on_the_form(new_page: Page, server, superuser, mint):
    await log_in(new_page, server, "/")
    await new_page.goto("/studio/acme/Stand_Up/")
    await expect(new_page).to_have_url(f"{server.http_url}/?project=acme&room=Stand_Up")
    await expect(new_page.get_by_role("alert")).to_contain_text("Room names are 1-63 characters of a-z, 0-9 and '-'")
    room = new_page.get_by_label("Room", exact=True)
    await expect(room).to_have_value("Stand_Up")
    await expect(room).to_have_attribute("aria-invalid", "true")

    await room.fill("stand-up")
    await new_page.get_by_role("button", name="Open").click()
    await expect(new_page).to_have_url(f"{server.http_url}/studio/acme/stand-up/")
    await expect(new_page.locator("#status")).to_contain_text(f"Connected as {IDENTITY}")


async def test_the_site_has_a_favicon(new_page: Page, server):
    icon = await new_page.request.get("/favicon.ico")
    assert icon.ok and icon.url == f"{server.http_url}/static/meshsite/favicon.svg"
    assert icon.headers["content-type"].startswith("image/svg+xml")
