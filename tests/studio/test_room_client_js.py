"""`static/meshsite/room.js` on its own, in a real Chromium against the real server: a plain page
of the server's origin imports the module and speaks to Python peers through it."""

import asyncio

import pytest
from meshsite_client.protocol import ErrorCode
from playwright.async_api import Page

from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e]

CONNECT = """async ([url, token]) => {
  const { RoomClient } = await import("/static/meshsite/room.js");
  window.room = await RoomClient.connect(url, token);
  return window.room.participant.id;
}"""


@pytest.fixture
async def blank_page(new_page: Page) -> Page:
    # Any page of the server's origin can import the module (and passes the Origin check).
    await new_page.goto("/api/v1/health")
    return new_page


async def test_a_hosted_tool_answers_with_its_handlers_result_progress_and_errors(blank_page: Page, ws_url, mint):
    host_id = await blank_page.evaluate(CONNECT, [ws_url("lobby"), mint("tab")])
    await blank_page.evaluate(
        """() => window.room.registerToolkit({
          name: "text", description: "Text tools", public: true,
          tools: [
            {name: "upper", description: "Upper-case", input_schema: {type: "object",
              properties: {text: {type: "string"}}, required: ["text"]},
             output_schema: {type: "string"},
             handler: async ({text}, ctx) => { ctx.progress({step: 1}); return text.toUpperCase(); }},
            {name: "fail", description: "Always fails", input_schema: {type: "object"},
             handler: () => { throw new Error("no such luck"); }},
          ]})"""
    )
    async with await RawPeer.connect(ws_url("lobby"), mint("caller")) as caller:
        listed = await caller.result("toolkits.list", {"participant_id": host_id})
        assert [t["name"] for t in listed["toolkits"]] == ["text"]
        upper = await caller.invoke("text", "upper", {"text": "hi"}, call_id="u1")
        assert upper["result"] == {"call_id": "u1", "output": "HI"}
        assert await caller.notification("tools.progress") == {"call_id": "u1", "progress": {"step": 1}}
        failed = (await caller.invoke("text", "fail", {}))["error"]
        assert failed["code"] == ErrorCode.TOOL_FAILED
        assert failed["data"]["message"] == "no such luck"


async def test_a_hosted_tool_is_told_when_its_call_is_cancelled(blank_page: Page, ws_url, mint):
    await blank_page.evaluate(CONNECT, [ws_url("lobby"), mint("tab")])
    await blank_page.evaluate(
        """() => { window.cancelled = null; return window.room.registerToolkit({
          name: "slow", tools: [{name: "wait", input_schema: {type: "object"},
            handler: (args, ctx) => new Promise((resolve, reject) => ctx.signal.addEventListener("abort",
              () => { window.cancelled = ctx.signal.reason.reason; reject(ctx.signal.reason); }))}]}); }"""
    )
    async with await RawPeer.connect(ws_url("lobby"), mint("caller")) as caller:
        waiting = asyncio.create_task(caller.invoke("slow", "wait", {}, call_id="w1", timeout=30))
        await blank_page.wait_for_function("() => window.room._calls.size === 1")
        assert await caller.result("tools.cancel", {"call_id": "w1"}) == {"cancelled": True}
        assert (await waiting)["error"]["code"] == ErrorCode.CANCELLED
        await blank_page.wait_for_function("() => window.cancelled === 'cancelled'")


async def test_errors_reject_as_rpc_errors_with_code_message_and_data(blank_page: Page, ws_url, mint):
    await blank_page.evaluate(CONNECT, [ws_url("lobby"), mint("tab")])
    error = await blank_page.evaluate(
        """async () => {
          const { RpcError } = await import("/static/meshsite/room.js");
          try { await window.room.invoke("nope", "nothing", {}); }
          catch (e) { return {rpc: e instanceof RpcError, code: e.code, type: e.type, message: e.message}; }
        }"""
    )
    assert error["rpc"] is True
    assert error["code"] == ErrorCode.NOT_FOUND
    assert error["type"] == "not_found"
    assert "nope" in error["message"]


async def test_a_refused_token_rejects_connect_with_the_servers_reason(blank_page: Page, ws_url):
    refused = await blank_page.evaluate(
        """async (url) => {
          const { RoomClient, ConnectionError } = await import("/static/meshsite/room.js");
          try { await RoomClient.connect(url, "not-a-token"); return null; }
          catch (e) { return {connection: e instanceof ConnectionError, closeCode: e.closeCode, reason: e.reason,
                              fatal: e.fatal}; }
        }""",
        ws_url("lobby"),
    )
    assert refused is not None
    assert refused["connection"] is True and refused["fatal"] is True
    assert refused["closeCode"] == 4401
    assert refused["reason"]


async def test_the_client_refreshes_its_token_before_it_expires_and_stays_connected(blank_page: Page, ws_url, mint):
    short, fresh = mint("tab", ttl=4), mint("tab", ttl=3600)
    await blank_page.evaluate(
        """async ([url, short, fresh]) => {
          const { RoomClient } = await import("/static/meshsite/room.js");
          window.asked = [];
          const token = ({reason}) => { window.asked.push(reason); return reason === "refresh" ? fresh : short; };
          window.room = await RoomClient.connect(url, token);
          window.firstExpiry = new Date(window.room.ready.token_expires_at).getTime();
        }""",
        [ws_url("lobby"), short, fresh],
    )
    refreshed = await blank_page.evaluate("() => window.room.waitFor('connection.token_refreshed', () => true, 15)")
    assert refreshed["token_expires_at"].endswith("Z")
    # Past the first token's expiry the connection is still the same one, and usable.
    await blank_page.wait_for_function("() => Date.now() > window.firstExpiry + 1500", timeout=15_000)
    assert await blank_page.evaluate("() => window.room.state") == "connected"
    assert (await blank_page.evaluate("() => window.room.ping()"))["pong"] is True
    assert await blank_page.evaluate("() => window.asked") == ["connect", "refresh"]
