"""Workspace basics in a real Chromium: Studio's own sign-in page, the rooms list with live
participant counts and pages, the project switcher that remembers, two tabs of one person in one
room, and the pages at phone width."""

import pytest
from django.contrib.auth import get_user_model
from playwright.async_api import Browser, Page, expect

from rooms.actions.projects import do_create_project
from rooms.models import Project, Room
from tests.studio.support import IDENTITY, PASSWORD, ROOM_PATH, SCREENSHOTS, USERNAME, log_in
from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.e2e]


async def test_sign_in_is_studios_own_page_says_what_went_wrong_and_sign_out_returns_to_it(
    new_page: Page, server: ServerProcess, superuser
):
    await new_page.goto("/studio/acme/lobby/")
    await expect(new_page).to_have_url(f"{server.http_url}/login/?next=/studio/acme/lobby/")
    await expect(new_page.get_by_role("heading", name="Sign in to Studio")).to_be_visible()
    await expect(new_page.locator("#site-name")).to_have_count(0)  # not the admin's page
    await new_page.get_by_label("Username").fill(USERNAME)
    await new_page.get_by_label("Password").fill("wrong")
    await new_page.get_by_role("button", name="Sign in").click()
    await expect(new_page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")
    await expect(new_page.get_by_label("Username")).to_have_value(USERNAME)
    await expect(new_page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    await new_page.screenshot(path=str(SCREENSHOTS / "sign-in-error.png"))

    await new_page.get_by_label("Password").fill(PASSWORD)
    await new_page.get_by_role("button", name="Sign in").click()
    await expect(new_page).to_have_url(f"{server.http_url}/studio/acme/lobby/")
    await expect(new_page.locator("#status")).to_have_attribute("data-state", "connected")

    await new_page.get_by_role("button", name="Sign out").click()
    await expect(new_page).to_have_url(f"{server.http_url}/login/")
    await new_page.goto("/")
    await expect(new_page).to_have_url(f"{server.http_url}/login/?next=/")


async def test_the_rooms_list_shows_live_participant_counts(new_page: Page, server: ServerProcess, superuser, mint):
    await log_in(new_page, server, "/")
    async with await RawPeer.connect(server.ws_url("standup"), mint("bob", room="standup")):
        await new_page.reload()
        row = new_page.locator('#rooms tr[data-room="standup"]')
        await expect(row.locator(".present")).to_have_text("1")
        async with await RawPeer.connect(server.ws_url("standup"), mint("carol", room="standup")):
            await expect(row.locator(".present")).to_have_text("2")  # without a reload
        await expect(row.locator(".present")).to_have_text("1")
        await new_page.screenshot(path=str(SCREENSHOTS / "rooms.png"), full_page=True)


@pytest.fixture
def beta_rooms(project: Project) -> None:
    """A second project with 25 rooms (two pages), and one room only acme has."""
    beta = do_create_project("beta", "Beta team")
    Room.objects.bulk_create([Room(project=beta, name=f"room-{n:02d}") for n in range(25)])
    Room.objects.create(project=project, name="only-in-acme")


async def test_the_rooms_list_pages_and_the_project_switcher_remembers_the_last_project(
    new_page: Page, server: ServerProcess, superuser, beta_rooms
):
    await log_in(new_page, server, "/")
    await expect(new_page.get_by_role("heading", name="Rooms")).to_contain_text("acme")
    await expect(new_page.get_by_role("link", name="only-in-acme")).to_be_visible()

    await new_page.get_by_label("Current project").select_option("beta")
    await expect(new_page.get_by_role("heading", name="Rooms")).to_contain_text("beta · Beta team")
    await expect(new_page.locator("#rooms tbody tr")).to_have_count(20)
    await expect(new_page.get_by_role("link", name="only-in-acme")).to_have_count(0)
    await new_page.get_by_role("link", name="Older →").click()
    await expect(new_page.locator("#rooms tbody tr")).to_have_count(5)
    await expect(new_page.get_by_text("Page 2 of 2 · 25 in all")).to_be_visible()

    # A new visit (no ?project=) opens the last project, and so does the open-room form.
    await new_page.goto("/")
    await expect(new_page.get_by_role("heading", name="Rooms")).to_contain_text("beta")
    await expect(new_page.get_by_label("Project", exact=True)).to_have_value("beta")
    await expect(new_page.get_by_label("Current project")).to_have_value("beta")


async def test_an_empty_project_says_how_to_start(new_page: Page, server: ServerProcess, superuser, project):
    await log_in(new_page, server, "/")
    await expect(new_page.locator(".empty-state")).to_have_text(
        "No rooms in acme yet. Open one above: it is created when you join it."
    )


@pytest.fixture
def dora(project: Project) -> None:
    """Someone with an account and no project."""
    get_user_model().objects.create_user("dora", "dora@example.com", PASSWORD)


async def test_a_person_without_projects_is_told_so(new_page: Page, server: ServerProcess, dora):
    await new_page.goto("/login/")
    await new_page.get_by_label("Username").fill("dora")
    await new_page.get_by_label("Password").fill(PASSWORD)
    await new_page.get_by_role("button", name="Sign in").click()
    await expect(new_page.locator(".empty-state")).to_contain_text("You are not a member of any project yet")


async def test_two_tabs_of_the_same_person_are_both_live_in_one_room(
    browser: Browser, server: ServerProcess, superuser, ws_url, mint
):
    context = await browser.new_context(base_url=server.http_url, viewport={"width": 1280, "height": 900})
    try:
        first = await context.new_page()
        await log_in(first, server, ROOM_PATH)
        await expect(first.locator("#status")).to_have_attribute("data-state", "connected")
        second = await context.new_page()  # same session: same person
        await second.goto(ROOM_PATH)
        await expect(second.locator("#status")).to_have_attribute("data-state", "connected")
        first_id = await first.locator("#room").get_attribute("data-participant-id")
        second_id = await second.locator("#room").get_attribute("data-participant-id")
        assert first_id and second_id and first_id != second_id

        # Neither replaced the other: both are present, seen by each tab and by a Python peer.
        for page in (first, second):
            await expect(page.locator(f'#participants li[data-identity="{IDENTITY}"]')).to_have_count(2)
            await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        async with await RawPeer.connect(ws_url("lobby"), mint("bob", name="Bob")) as bob:
            mine = [p["id"] for p in bob.ready["participants"] if p["identity"] == IDENTITY]
            assert sorted(mine) == sorted([first_id, second_id])
            await bob.invoke("messaging", "broadcast", {"type": "chat", "message": {"text": "hello both"}})
            for page in (first, second):
                await expect(page.locator("#chat-log li")).to_contain_text(["hello both"])
            # Each tab hosts its own private `ui` toolkit: a toast reaches only the tab it targets.
            await bob.invoke("ui", "show_toast", {"message": "only the second"}, participant_id=second_id)
            await expect(second.locator(".mesh-toast")).to_contain_text("only the second")
            await expect(first.locator(".mesh-toast")).to_have_count(0)
    finally:
        await context.close()


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_pages_fit_the_screen_at_desktop_and_phone_width(
    browser: Browser, server: ServerProcess, superuser, mint, width
):
    context = await browser.new_context(base_url=server.http_url, viewport={"width": width, "height": 860})
    try:
        page = await context.new_page()
        await log_in(page, server, ROOM_PATH)
        await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        for path, name in [
            (ROOM_PATH, "room"),
            ("/", "rooms"),
            ("/studio/acme/-/calls/", "calls"),
            ("/studio/acme/-/usage/", "usage"),
        ]:
            await page.goto(path)
            await page.wait_for_load_state("networkidle")
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
            await page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    finally:
        await context.close()
