"""Fixtures for the Studio browser tests: Debian's Chromium driven by playwright, signed in as a
superuser through the Studio sign-in page, on the room page of the session's server process."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.studio.support import CHROMIUM, CHROMIUM_ARGS, PASSWORD, ROOM_PATH, USERNAME, log_in
from tests.support.servers import ServerProcess
from tests.support.services import unavailable

expect.set_options(timeout=10_000)


@pytest.fixture
def superuser(project: Any) -> Any:
    """Committed (the `project` fixture is transactional), so the server process sees it."""
    return get_user_model().objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"needs Chromium at {CHROMIUM}: run .ci/install-chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        await browser.close()


@pytest.fixture
async def new_page(browser: Browser, server: ServerProcess, mint: Any) -> AsyncIterator[Page]:
    """A fresh browser context on the server. Depends on `mint` so that whatever the page
    connected has left the room before `mint` waits for everyone to leave."""
    context = await browser.new_context(base_url=server.http_url, viewport={"width": 1440, "height": 960})
    yield await context.new_page()
    await context.close()


@pytest.fixture
async def room_page(new_page: Page, server: ServerProcess, superuser: Any) -> AsyncIterator[Page]:
    """The Studio room page for acme/lobby, signed in through the Studio sign-in page, connected."""
    errors: list[str] = []
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    await log_in(new_page, server, ROOM_PATH)
    await expect(new_page.locator("#status")).to_have_attribute("data-state", "connected")
    # The page hosts its private `ui` toolkit once it is connected.
    await expect(new_page.locator('#toolkits li[data-toolkit="ui"]')).to_be_visible()
    yield new_page
    assert not errors, f"uncaught errors in the page: {errors}"
