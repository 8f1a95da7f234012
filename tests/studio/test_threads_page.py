"""Threads on the Studio room page, in a real Chromium against a real server process: the thread
list, a thread's history kept live and intact across a reload, and chatting with a ChatBot whose
turn streams into the page (thinking, text, tool-call cards, Interrupt, an approval asked inline).
The model is the local OpenAI wire-format server (tests/support/fake_openai.py)."""

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from meshsite_client.agents.chatbot import ChatBot
from playwright.async_api import Page, expect

from tests.agents_client.live import running
from tests.studio.support import IDENTITY, ROOM_PATH, USERNAME, output
from tests.support.fake_openai import FakeOpenAI, ToolCall, fake_openai
from tests.support.peer import ADD_TOOL, RawPeer
from tests.support.servers import ROOT

pytestmark = [pytest.mark.e2e]
__all__ = ["fake_openai"]

SCREENSHOTS = ROOT / "var" / "screenshots"
THREAD_URL = re.compile(r".*/studio/acme/lobby/\?thread=(t_[0-9a-f]{16})$")


def assistant(fake: FakeOpenAI, **config: Any) -> ChatBot:
    return ChatBot(
        name="assistant",
        title="Assistant",
        model="gpt-test",
        api_key="sk-test",
        base_url=fake.base_url,
        tool_toolkits=["calc"],
        **config,
    )


def assistant_token(mint: Any) -> str:
    return mint("assistant", role="agent", name="Assistant", agent="assistant")


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    await page.locator("#threads-panel").screenshot(path=str(path))
    assert path.stat().st_size > 5_000


async def new_thread(page: Page, title: str) -> str:
    await page.get_by_label("Title of a new thread").fill(title)
    await page.get_by_role("button", name="New thread").click()
    await expect(page).to_have_url(THREAD_URL)
    match = THREAD_URL.match(page.url)
    assert match
    await expect(page.locator("#conversation-title")).to_have_text(title)
    await expect(page.get_by_label("Write in this thread")).to_be_enabled()
    return match.group(1)


async def post(page: Page, text: str) -> None:
    box = page.get_by_label("Write in this thread")
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("")


async def peer_thread(peer: RawPeer, title: str, *texts: str) -> str:
    thread = output(await peer.invoke("threads", "create", {"title": title}))["thread"]
    for text in texts:
        output(await peer.invoke("threads", "post", {"thread_id": thread["id"], "text": text}))
    return str(thread["id"])


async def test_a_new_thread_is_selected_in_the_url_and_a_post_is_stored_with_its_author_and_shown_as_text(
    room_page: Page, ws_url, mint
):
    await expect(room_page.locator("#threads-empty")).to_be_visible()
    thread_id = await new_thread(room_page, "Weekend plans")
    item = room_page.locator(f'#thread-list li[data-thread-id="{thread_id}"]')
    await expect(item).to_contain_text("Weekend plans")
    await expect(item.get_by_role("button")).to_have_attribute("aria-current", "true")

    await post(room_page, "Hiking on Saturday?\nOr the museum.")
    hostile = '<img src=x onerror="window.injected=1"><b>bold</b>'
    await post(room_page, hostile)

    history = room_page.locator("#thread-history > li")
    await expect(history).to_have_count(2)
    first = history.nth(0)
    await expect(first).to_have_attribute("data-author", IDENTITY)
    await expect(first.locator(".author")).to_have_text(USERNAME)
    await expect(first.locator(".identity")).to_have_text(IDENTITY)
    await expect(first.locator(".badge.role")).to_have_text("user")
    await expect(first.locator(".badge.you")).to_be_visible()
    await expect(first.locator(".avatar")).to_have_text("AD")
    await expect(first.locator(".part-text")).to_have_text("Hiking on Saturday?\nOr the museum.")
    # Text is text: no element is made of it, no script of it runs.
    await expect(history.nth(1).locator(".part-text")).to_have_text(hostile)
    await expect(room_page.locator("#thread-history img, #thread-history b")).to_have_count(0)
    assert await room_page.evaluate("window.injected") is None
    await expect(item).to_contain_text("2 posts")

    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        stored = output(await bob.invoke("threads", "get", {"thread_id": thread_id}))
    assert stored["thread"]["title"] == "Weekend plans"
    assert [m["parts"] for m in stored["messages"]] == [
        [{"type": "text", "text": "Hiking on Saturday?\nOr the museum."}],
        [{"type": "text", "text": hostile}],
    ]
    assert {m["author"]["identity"] for m in stored["messages"]} == {IDENTITY}


async def test_a_python_peers_threads_and_posts_appear_live_with_tool_call_cards(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob", name="Bob Marley", role="agent")) as bob:
        thread_id = await peer_thread(bob, "Deploys", "Starting the deploy")
        other_id = await peer_thread(bob, "Elsewhere")
        items = room_page.locator("#thread-list li")
        await expect(items).to_have_count(2)
        # most recently active first
        await expect(items.nth(0)).to_have_attribute("data-thread-id", other_id)
        await room_page.locator(f'#thread-list li[data-thread-id="{thread_id}"] button').click()
        await expect(room_page).to_have_url(f"{room_page.url.split('?')[0]}?thread={thread_id}")
        history = room_page.locator("#thread-history > li")
        await expect(history).to_have_count(1)

        parts = [
            {"type": "text", "text": "Done, with two calls:"},
            {
                "type": "tool_call",
                "call_id": "c1",
                "toolkit": "deploy",
                "tool": "run",
                "status": "ok",
                "arguments": {"service": "web", "replicas": 3},
                "result": {"version": "v42"},
                "approved_by": "alice",
            },
            {
                "type": "tool_call",
                "call_id": "c2",
                "toolkit": "deploy",
                "tool": "notify",
                "status": "error",
                "arguments": {"channel": "#ops"},
                "error": "channel not found",
            },
        ]
        output(await bob.invoke("threads", "post", {"thread_id": thread_id, "parts": parts}))
        await expect(history).to_have_count(2)
        live = history.nth(1)
        await expect(live.locator(".author")).to_have_text("Bob Marley")
        await expect(live.locator(".identity")).to_have_text("bob")
        await expect(live.locator(".badge.role")).to_have_text("agent")
        await expect(live.locator(".avatar")).to_have_text("BM")
        await expect(live.locator(".badge.you")).to_have_count(0)
        ok = live.locator('.tool-card[data-call-id="c1"]')
        await expect(ok.locator(".tool-name")).to_have_text("deploy.run")
        await expect(ok.locator(".tool-status")).to_have_text("ok")
        await expect(ok.locator(".tool-arguments")).to_have_text('{"service":"web","replicas":3}')
        await expect(ok.locator(".tool-result")).to_have_text('{"version":"v42"}')
        await expect(ok.locator(".approved-by")).to_have_text("approved by alice")
        failed = live.locator('.tool-card[data-call-id="c2"]')
        await expect(failed).to_have_attribute("data-status", "error")
        await expect(failed.locator(".tool-error")).to_have_text("channel not found")
        await expect(failed.locator(".tool-result")).to_have_count(0)

        # A post elsewhere moves that thread up and counts as new there.
        output(await bob.invoke("threads", "post", {"thread_id": other_id, "text": "psst"}))
        other = room_page.locator(f'#thread-list li[data-thread-id="{other_id}"]')
        await expect(other.locator(".badge.unread")).to_have_text("1 new")
        await expect(history).to_have_count(2)

        # An author's update replaces the message in place.
        parts[1] = {**parts[1], "result": {"version": "v43"}}
        output(await bob.invoke("threads", "update", {"thread_id": thread_id, "seq": 2, "parts": parts}))
        await expect(ok.locator(".tool-result")).to_have_text('{"version":"v43"}')

        output(await bob.invoke("threads", "delete", {"thread_id": thread_id}))
        await expect(room_page.locator(f'#thread-list li[data-thread-id="{thread_id}"]')).to_have_count(0)
        await expect(room_page.locator("#conversation-error")).to_have_text("This thread was deleted.")
        await expect(room_page.get_by_label("Write in this thread")).to_be_disabled()


async def test_a_reload_reopens_the_selected_thread_with_its_whole_history(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob", name="Bob")) as bob:
        # more than one page of `threads.get` (200)
        thread_id = await peer_thread(bob, "Long one", *(f"line {n}" for n in range(1, 206)))
    await room_page.goto(f"{ROOM_PATH}?thread={thread_id}")
    await expect(room_page.locator("#status")).to_have_attribute("data-state", "connected")
    history = room_page.locator("#thread-history > li")
    await expect(history).to_have_count(205)
    await post(room_page, "and one from me")
    await expect(history).to_have_count(206)

    await room_page.reload()
    await expect(room_page.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(room_page).to_have_url(re.compile(rf"\?thread={thread_id}$"))
    await expect(room_page.locator("#conversation-title")).to_have_text("Long one")
    await expect(history).to_have_count(206)
    await expect(history.nth(0).locator(".part-text")).to_have_text("line 1")
    await expect(history.nth(204).locator(".part-text")).to_have_text("line 205")
    await expect(history.last).to_have_attribute("data-author", IDENTITY)
    await expect(history.last.locator(".part-text")).to_have_text("and one from me")
    await expect(room_page.locator(f'#thread-list li[data-thread-id="{thread_id}"] button')).to_have_attribute(
        "aria-current", "true"
    )

    # A thread id that does not exist says so instead of loading forever.
    await room_page.goto(f"{ROOM_PATH}?thread=t_0000000000000000")
    await expect(room_page.locator("#conversation-error")).to_contain_text("no thread t_0000000000000000")


async def test_the_thread_list_pages_with_load_more(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob:
        for n in range(1, 23):
            output(await bob.invoke("threads", "create", {"title": f"Topic {n:02d}"}))
    await room_page.reload()
    await expect(room_page.locator("#status")).to_have_attribute("data-state", "connected")
    items = room_page.locator("#thread-list li")
    await expect(items).to_have_count(20)
    await expect(room_page.locator("#thread-count")).to_have_text("20+")
    await expect(items.first).to_contain_text("Topic 22")
    await room_page.get_by_role("button", name="Load more threads").click()
    await expect(items).to_have_count(22)
    await expect(items.last).to_contain_text("Topic 01")
    await expect(room_page.get_by_role("button", name="Load more threads")).to_be_hidden()
    await expect(room_page.locator("#thread-count")).to_have_text("22")


async def test_a_chatbot_turn_streams_into_the_page_with_a_live_tool_card_then_its_message_replaces_it(
    room_page: Page, ws_url, mint, fake_openai
):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 2, "b": 3})])
    fake_openai.reply("The sum of 2 and 3 is 5.", hold_after=4)
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob", name="Bob")) as bob,
        running(assistant(fake_openai), ws_url("lobby"), assistant_token(mint)),
    ):
        await bob.register("calc", [ADD_TOOL])
        await expect(room_page.locator('#toolkits li[data-toolkit="assistant"]')).to_be_visible()
        await new_thread(room_page, "Arithmetic")
        await post(room_page, "What is 2+3?")

        live = room_page.locator("#thread-history > li.live")
        await expect(live).to_have_attribute("data-author", "assistant")
        await expect(live.locator(".badge.role")).to_have_text("agent")
        card = live.locator(".tool-card")
        call = await bob.next_call(timeout=15)
        await expect(card).to_have_attribute("data-status", "running")
        await expect(card.locator(".tool-name")).to_have_text("calc.add")
        await expect(card.locator(".tool-arguments")).to_have_text('{"a":2,"b":3}')
        await bob.send(
            {"jsonrpc": "2.0", "method": "tools.progress", "params": {"call_id": call["id"], "progress": {"step": 1}}}
        )
        await expect(card.locator(".tool-progress")).to_have_text('{"step":1}')
        await expect(live.get_by_role("button", name="Interrupt")).to_be_visible()
        await bob.answer(call, 5)
        await expect(card).to_have_attribute("data-status", "ok")

        # The second model call streams, held part-way: its first words show, live (the bot sends
        # the first delta at once and batches the next ones).
        streaming = live.locator(".part-text.streaming")
        await expect(streaming).to_contain_text("The")
        await expect(streaming).not_to_contain_text("is 5.")
        await expect(live.locator(".thinking-indicator")).to_have_count(0)
        await screenshot(room_page, "studio-thread-streaming.png")
        fake_openai.release()

        history = room_page.locator("#thread-history > li")
        await expect(live).to_have_count(0)
        await expect(history).to_have_count(2)
        answer = history.nth(1)
        await expect(answer).to_have_attribute("data-seq", "2")
        await expect(answer.locator(".author")).to_have_text("Assistant")
        await expect(answer.locator(".part-text")).to_have_text("The sum of 2 and 3 is 5.")
        final = answer.locator(".tool-card")
        await expect(final).to_have_attribute("data-status", "ok")
        await expect(final.locator(".tool-result")).to_have_text("5")
        await expect(final.locator(".tool-arguments")).to_have_text('{"a":2,"b":3}')
        await screenshot(room_page, "studio-thread-answer.png")
        await room_page.set_viewport_size({"width": 1280, "height": 900})
        await room_page.screenshot(path=str(SCREENSHOTS / "studio-room-1280.png"), full_page=True)


async def test_the_page_shows_thinking_and_its_interrupt_button_stops_a_held_turn(
    room_page: Page, ws_url, mint, fake_openai
):
    fake_openai.reply("Partial words then more", hold_after=2, delay=1.0)
    try:
        async with running(assistant(fake_openai), ws_url("lobby"), assistant_token(mint)):
            await expect(room_page.locator('#toolkits li[data-toolkit="assistant"]')).to_be_visible()
            thread_id = await new_thread(room_page, "Chatter")
            await post(room_page, "talk to me")
            live = room_page.locator("#thread-history > li.live")
            # Before the model's first words: the thinking state.
            await expect(live.locator(".thinking-indicator")).to_contain_text("Thinking")
            await expect(live.locator(".part-text.streaming")).to_contain_text("Partial")
            await expect(live.locator(".thinking-indicator")).to_have_count(0)
            await expect(
                room_page.locator(f'#thread-list li[data-thread-id="{thread_id}"] .badge.live')
            ).to_be_visible()

            await live.get_by_role("button", name="Interrupt").click()
            history = room_page.locator("#thread-history > li")
            await expect(live).to_have_count(0)
            await expect(history).to_have_count(2)
            await expect(history.nth(1).locator(".part-text")).to_have_text(re.compile(r"^Partial"))
            await expect(history.nth(1)).not_to_contain_text("then more")
            await expect(room_page.locator("#conversation-error")).to_be_hidden()
            await expect(room_page.locator(f'#thread-list li[data-thread-id="{thread_id}"] .badge.live')).to_have_count(
                0
            )
            assert fake_openai.requests[0].messages[-1]["content"] == "talk to me"
    finally:
        fake_openai.release()


async def test_an_approval_is_asked_beside_the_conversation_and_allow_runs_the_tool(
    room_page: Page, ws_url, mint, fake_openai
):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 20, "b": 22})])
    fake_openai.reply("That makes 42.")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob", name="Bob")) as bob,
        running(assistant(fake_openai, approvals=["calc.add"]), ws_url("lobby"), assistant_token(mint)),
    ):
        await bob.register("calc", [ADD_TOOL])
        await expect(room_page.locator('#toolkits li[data-toolkit="assistant"]')).to_be_visible()
        await new_thread(room_page, "Needs a yes")
        await post(room_page, "Add 20 and 22")

        ask = room_page.locator("#conversation").get_by_role("dialog")
        await expect(ask).to_be_visible()
        await expect(ask).to_contain_text("Assistant asks:")
        await expect(ask).to_contain_text("calc.add")
        await expect(ask).to_be_in_viewport()
        live = room_page.locator("#thread-history > li.live")
        await expect(live.locator(".tool-card")).to_have_attribute("data-status", "pending")
        await screenshot(room_page, "studio-thread-approval.png")
        await ask.get_by_role("button", name="Allow").click()
        await expect(ask).to_have_count(0)

        call = await bob.next_call(timeout=15)
        assert call["params"]["arguments"] == {"a": 20, "b": 22}
        await bob.answer(call, 42)
        answer = room_page.locator("#thread-history > li").nth(1)
        await expect(answer.locator(".part-text")).to_have_text("That makes 42.")
        card = answer.locator(".tool-card")
        await expect(card).to_have_attribute("data-status", "ok")
        await expect(card.locator(".approved-by")).to_have_text(f"approved by {IDENTITY}")
        await expect(card.locator(".tool-result")).to_have_text("42")
        await expect(live).to_have_count(0)


async def test_deny_refuses_the_tool_and_the_card_says_so(room_page: Page, ws_url, mint, fake_openai):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 1, "b": 1})])
    fake_openai.reply("Understood, I did not add them.")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        running(assistant(fake_openai, approvals=["calc.add"]), ws_url("lobby"), assistant_token(mint)),
    ):
        await bob.register("calc", [ADD_TOOL])
        await expect(room_page.locator('#toolkits li[data-toolkit="assistant"]')).to_be_visible()
        await new_thread(room_page, "Needs a no")
        await post(room_page, "Add 1 and 1")
        ask = room_page.locator("#conversation").get_by_role("dialog")
        await ask.get_by_role("button", name="Deny").click()
        card = room_page.locator("#thread-history > li").nth(1).locator(".tool-card")
        await expect(card).to_have_attribute("data-status", "refused")
        await expect(card.locator(".tool-error")).to_contain_text("did not approve")
        await expect(card.locator(".approved-by")).to_have_count(0)
        await asyncio.sleep(0.2)
        assert not [m for m in bob.inbox if m.get("method") == "tools.call"]


async def test_after_a_dropped_connection_the_selected_thread_reads_what_it_missed(room_page: Page, ws_url, mint):
    async with await RawPeer.connect(ws_url("lobby"), mint("bob", name="Bob")) as bob:
        thread_id = await peer_thread(bob, "Flaky network", "before")
        await room_page.locator(f'#thread-list li[data-thread-id="{thread_id}"] button').click()
        history = room_page.locator("#thread-history > li")
        await expect(history).to_have_count(1)
        # Hold the page's reconnect back while bob posts: the notification cannot reach it.
        await room_page.evaluate("() => { window.meshsiteRoom.options.minBackoff = 2000; }")
        await room_page.evaluate(
            """() => window.meshsiteRoom.request("ping", {pad: "x".repeat(1100000)}).catch((e) => e.message)"""
        )
        await expect(room_page.locator("#status")).to_have_attribute("data-state", "reconnecting")
        output(await bob.invoke("threads", "post", {"thread_id": thread_id, "text": "while you were away"}))
        await expect(room_page.locator("#status")).to_have_attribute("data-state", "connected")
        await expect(history).to_have_count(2)
        await expect(history.nth(1).locator(".part-text")).to_have_text("while you were away")


async def test_a_post_with_an_attachment_stores_it_in_the_room_and_a_python_peer_reads_it(
    room_page: Page, ws_url, mint, tmp_path
):
    notes = tmp_path / "notes.txt"
    notes.write_text("agenda: ship it\n")
    await new_thread(room_page, "With a file")
    await room_page.get_by_label("Attach files").set_input_files(str(notes))
    await expect(room_page.locator("#composer-attachments li")).to_have_attribute("data-name", "notes.txt")
    await room_page.get_by_label("Write in this thread").fill("see the file")
    await room_page.get_by_role("button", name="Post", exact=True).click()
    message = room_page.locator("#thread-history > li").last
    attachment = message.locator(".part-attachment")
    await expect(attachment).to_contain_text("notes.txt")
    await expect(message.locator(".part-text")).to_have_text("see the file")
    await expect(room_page.locator("#composer-attachments li")).to_have_count(0)
    path = await attachment.get_attribute("data-path")
    assert path and path.startswith("users/studio-admin/attachments/t_") and path.endswith("-notes.txt")

    async with await RawPeer.connect(ws_url("lobby"), mint("robot", role="agent")) as robot:
        read = output(await robot.invoke("storage", "read", {"path": path}))
        assert read["text"] == "agenda: ship it\n"

    async with room_page.expect_download() as download_info:
        await attachment.get_by_role("button", name="Download").click()
    download = await download_info.value
    assert download.suggested_filename == "notes.txt"
    assert (tmp_path / "got.txt").write_bytes(Path(await download.path()).read_bytes()) == 16
