"""Constants and helpers shared by the Studio browser tests."""

from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.support.peer import RawPeer
from tests.support.servers import ROOT, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USERNAME = "admin"
PASSWORD = "studio-test-password"
# The identity room_page mints for the signed-in user.
IDENTITY = f"studio-{USERNAME}"
ROOM_PATH = "/studio/acme/lobby/"
# Screenshots of the main pages, kept as test artifacts (var/ is not versioned).
SCREENSHOTS = ROOT / "var" / "screenshots"
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def browser_participant_id(peer: RawPeer) -> str:
    """The Studio tab's participant id, from the participants a peer saw when it joined."""
    ids = [p["id"] for p in peer.ready["participants"] if p["identity"] == IDENTITY]
    assert len(ids) == 1, peer.ready["participants"]
    return str(ids[0])


def output(response: dict[str, Any]) -> Any:
    assert "result" in response, response
    return response["result"]["output"]


async def log_in(page: Page, server: ServerProcess, next_path: str) -> None:
    """Through the Studio sign-in page, as the superuser of the `superuser` fixture."""
    await page.goto(f"/login/?next={next_path}")
    await page.get_by_label("Username").fill(USERNAME)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{server.http_url}{next_path}")
