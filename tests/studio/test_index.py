"""The Studio index: signed-in people see the rooms of their projects and open one by name."""

import pytest
from playwright.async_api import Page, expect

from tests.studio.support import IDENTITY, log_in

pytestmark = [pytest.mark.e2e]


async def test_the_studio_needs_a_signed_in_user(new_page: Page, server, superuser):
    await new_page.goto("/studio/acme/lobby/")
    await expect(new_page).to_have_url(f"{server.http_url}/admin/login/?next=/studio/acme/lobby/")


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
