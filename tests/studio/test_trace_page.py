"""The trace of a ChatBot turn in a real Chromium: asked from the room page, the model (the local
OpenAI wire-format server) calls a tool hosted by another participant; the answer links to the
turn's trace, a waterfall with the model calls and the tool call on its host; the calls page
filters down to that call and links to the same trace."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from playwright.async_api import Page, expect

from observability.models import ToolCall as LedgerRow
from tests.agents_client.live import running
from tests.studio.support import SCREENSHOTS
from tests.studio.test_threads_page import assistant, assistant_token, new_thread, post
from tests.support.fake_openai import ToolCall, fake_openai
from tests.support.peer import ADD_TOOL, RawPeer

pytestmark = [pytest.mark.e2e]
__all__ = ["fake_openai"]


async def eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 15) -> Any:
    """Re-reads the database (in a thread, closing its connection) until `done(value)`."""

    def run() -> Any:
        try:
            return read()
        finally:
            connection.close()

    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(run)
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_a_chatbot_turns_trace_shows_the_model_calls_and_the_tool_call_on_another_participant(
    room_page: Page, ws_url, mint, fake_openai
):
    fake_openai.reply(tool_calls=[ToolCall("calc__add", {"a": 2, "b": 3})], usage=(40, 6))
    fake_openai.reply("The sum is 5.", usage=(60, 4))
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("bob", name="Bob")) as bob,
        running(assistant(fake_openai), ws_url("lobby"), assistant_token(mint)),
    ):
        await bob.register("calc", [ADD_TOOL])
        await expect(room_page.locator('#toolkits li[data-toolkit="assistant"]')).to_be_visible()
        await new_thread(room_page, "Sums")
        await post(room_page, "What is 2+3?")
        call = await bob.next_call(timeout=15)
        await bob.answer(call, 5)
        answer = room_page.locator('#thread-history > li[data-author="assistant"]:not(.live)')
        await expect(answer.locator(".part-text")).to_have_text("The sum is 5.")

        # The ledger is written off the hot path: wait for the turn's rows before opening it.
        def rows() -> list[LedgerRow]:
            return list(LedgerRow.objects.filter(caller_identity="assistant").exclude(trace_id=""))

        def complete(found: list[LedgerRow]) -> bool:
            kinds = {(r.toolkit, r.tool) for r in found}
            return {("calc", "add"), ("threads", "post"), ("usage", "record")} <= kinds

        ledger = await eventually(rows, complete)
        assert complete(ledger), [(r.toolkit, r.tool) for r in ledger]
        (add,) = [r for r in ledger if r.toolkit == "calc"]
        trace_id = add.trace_id

        await answer.get_by_role("link", name="trace").click()
        await expect(room_page).to_have_url(f"{room_page.url.split('/studio/')[0]}/studio/acme/-/traces/{trace_id}/")
        waterfall = room_page.locator("#waterfall")
        tool_row = waterfall.locator('tr[data-label="calc.add"]')
        await expect(tool_row).to_have_count(1)
        await expect(tool_row.locator(".span-who")).to_contain_text("assistant → bob")
        await expect(tool_row).to_have_attribute("data-status", "ok")
        llm_rows = waterfall.locator('tr[data-kind="usage"]')
        await expect(llm_rows).to_have_count(2)
        await expect(llm_rows.nth(0)).to_contain_text("llm gpt-test")
        await expect(llm_rows.nth(0)).to_contain_text("40 in / 6 out tokens")
        await expect(llm_rows.nth(1)).to_contain_text("60 in / 4 out tokens")
        # Each model call sits under the usage.record call that wrote it.
        await expect(llm_rows.nth(0)).to_have_attribute("data-depth", "1")
        await expect(room_page.locator("#trace-calls")).not_to_have_text("0")
        bar = tool_row.locator(".bar")
        assert (await bar.bounding_box() or {}).get("width", 0) > 0
        await room_page.screenshot(path=str(SCREENSHOTS / "trace.png"), full_page=True)

        # The calls page filters to that call and links to the same trace.
        await room_page.goto("/studio/acme/lobby/calls/")
        await room_page.get_by_label("Caller").fill("assistant")
        await room_page.get_by_label("Toolkit").fill("calc")
        await room_page.get_by_label("Status").select_option("ok")
        await room_page.get_by_role("button", name="Filter").click()
        calls = room_page.locator("#calls tbody tr")
        await expect(calls).to_have_count(1)
        await expect(calls.locator(".tool-name")).to_have_text("calc.add")
        await expect(calls.locator(".latency")).to_contain_text(" ms")
        await expect(room_page.locator('#latencies tr[data-tool="calc.add"]')).to_be_visible()
        await room_page.screenshot(path=str(SCREENSHOTS / "calls.png"), full_page=True)
        await room_page.get_by_label("Status").select_option("timeout")
        await room_page.get_by_role("button", name="Filter").click()
        calls_section = room_page.locator('section[aria-labelledby="calls-heading"]')
        await expect(calls_section.locator(".empty-state")).to_have_text("No tool calls match these filters.")
        await room_page.go_back()
        await calls.locator(".trace-link").click()
        await expect(room_page.locator('#waterfall tr[data-label="calc.add"]')).to_have_count(1)

        # The usage page charts the turn's tokens.
        await room_page.goto("/studio/acme/lobby/usage/")
        # This turn's 100 / 10 tokens at least (on the embedded SQLite run, a record of an earlier
        # test of the same run has been seen to survive the flush: see the report).
        tokens_in, tokens_out = (int(n) for n in (await room_page.locator("#total-tokens").inner_text()).split(" / "))
        assert tokens_in >= 100 and tokens_out >= 10
        for chart in ("cost-chart", "tokens-chart", "calls-chart"):
            await expect(room_page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
        await room_page.screenshot(path=str(SCREENSHOTS / "usage.png"), full_page=True)
