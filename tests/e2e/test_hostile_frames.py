"""Frames that are JSON but not portable JSON (too deep, NaN/Infinity, lone surrogates, NUL) are
refused with a documented error to their sender only; nothing of them reaches anyone else, and
nothing is left behind (project issue 15)."""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from meshsite_client.protocol import ErrorCode

from observability.models import ToolCall
from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

DEEP = "[" * 1000 + "]" * 1000  # 2 KB of nesting
QUIET = 0.5  # how long "nobody receives anything" is watched


def frame(request_id: Any, method: str, params_json: str) -> str:
    """A request whose params are written by hand, so they can hold what json.dumps never writes."""
    return f'{{"jsonrpc":"2.0","id":{json.dumps(request_id)},"method":"{method}","params":{params_json}}}'


async def answer_to(peer: RawPeer, request_id: Any, timeout: float = 5) -> dict[str, Any]:
    return await peer.expect(lambda m: "method" not in m and m.get("id") == request_id, timeout)


async def receives_nothing(peer: RawPeer, method: str = "messaging.message") -> bool:
    try:
        await peer.notification(method, timeout=QUIET)
    except TimeoutError:
        return True
    return False


async def present_ids(peer: RawPeer) -> set[str]:
    listed = await peer.invoke("participants", "list")
    return {p["id"] for p in listed["result"]["output"]["participants"]}


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.redis
async def test_a_1000_deep_frame_is_refused_and_its_sender_stays_present_then_leaves_on_both_nodes(two_nodes, mint):
    node_a, node_b = two_nodes
    room = "frames-deep"
    async with (
        await RawPeer.connect(node_a.ws_url(room), mint("olivia", room=room)) as on_a,
        await RawPeer.connect(node_b.ws_url(room), mint("oscar", room=room)) as on_b,
    ):
        mallory = await RawPeer.connect(node_a.ws_url(room), mint("mallory", room=room))
        for observer in (on_a, on_b):
            await observer.expect(
                lambda m: m.get("method") == "participant.joined" and m["params"]["participant"]["id"] == mallory.id
            )
        text = f'{{"jsonrpc":"2.0","id":2,"method":"ping","params":{{"a":{DEEP}}}}}'
        assert len(text) < 2100
        await mallory.send(text)
        refused = await mallory.expect(lambda m: "error" in m)
        assert refused["error"]["code"] == ErrorCode.INVALID_REQUEST, refused
        assert refused["id"] in (2, None), refused
        assert (await mallory.result("ping"))["pong"] is True
        for observer in (on_a, on_b):
            assert mallory.id in await present_ids(observer)
        await mallory.ws.close()
        mallory.reader.cancel()
        for observer in (on_a, on_b):
            left = await observer.notification("participant.left")
            assert (left["participant_id"], left["identity"]) == (mallory.id, "mallory")
            assert mallory.id not in await present_ids(observer)


async def test_a_frame_nested_past_the_limit_gets_its_own_id_back(ws_url, mint):
    async with await RawPeer.connect(ws_url("frames"), mint("mallory", room="frames")) as mallory:
        await mallory.send(frame("deep-100", "ping", '{"a":' + "[" * 100 + "]" * 100 + "}"))
        refused = await answer_to(mallory, "deep-100")
        assert refused["error"]["code"] == ErrorCode.INVALID_REQUEST, refused
        await mallory.send(frame("deep-60", "ping", '{"a":' + "[" * 60 + "]" * 60 + "}"))
        assert (await answer_to(mallory, "deep-60"))["result"]["pong"] is True


# --- numbers JSON does not have --------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
async def test_a_non_finite_timeout_is_invalid_params_answered_with_the_request_id(ws_url, mint, literal):
    async with await RawPeer.connect(ws_url("frames"), mint("mallory", room="frames")) as mallory:
        params = f'{{"toolkit":"participants","tool":"list","arguments":{{}},"timeout":{literal}}}'
        await mallory.send(frame("t-1", "tools.invoke", params))
        refused = await answer_to(mallory, "t-1")
        assert refused["error"]["code"] == ErrorCode.INVALID_PARAMS, refused
        assert refused["error"]["data"]["type"] == "invalid_params"
        await mallory.send(frame(77, "tools.invoke", params))
        assert (await answer_to(mallory, 77))["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert (await mallory.result("ping"))["pong"] is True


async def test_nan_inside_arguments_is_invalid_params(ws_url, mint):
    async with await RawPeer.connect(ws_url("frames"), mint("mallory", room="frames")) as mallory:
        await mallory.send(
            frame("a-1", "tools.invoke", '{"toolkit":"participants","tool":"list","arguments":{"x":NaN}}')
        )
        assert (await answer_to(mallory, "a-1"))["error"]["code"] == ErrorCode.INVALID_PARAMS


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "[1, -Infinity]", '{"deep": {"x": 1e999}}'])
async def test_nan_in_a_broadcast_is_invalid_params_and_nothing_is_relayed(ws_url, mint, literal):
    room = "frames-nan"
    async with (
        await RawPeer.connect(ws_url(room), mint("observer", room=room)) as observer,
        await RawPeer.connect(ws_url(room), mint("mallory", room=room)) as mallory,
    ):
        params = f'{{"toolkit":"messaging","tool":"broadcast","arguments":{{"type":"chat","message":{literal}}}}}'
        await mallory.send(frame("b-1", "tools.invoke", params))
        assert (await answer_to(mallory, "b-1"))["error"]["code"] == ErrorCode.INVALID_PARAMS
        params = (
            f'{{"toolkit":"messaging","tool":"send",'
            f'"arguments":{{"to":"{observer.id}","type":"chat","message":{literal}}}}}'
        )
        await mallory.send(frame("s-1", "tools.invoke", params))
        assert (await answer_to(mallory, "s-1"))["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert await receives_nothing(observer)


# --- lone surrogates -------------------------------------------------------------------------

SURROGATES = ["\\ud800", "\\uDBFF", "\\udc00", "\\uDFFF", "x\\udc00\\ud800y"]


@pytest.mark.parametrize("escaped", SURROGATES)
async def test_a_lone_surrogate_in_attributes_is_invalid_params_not_an_internal_error(ws_url, mint, escaped):
    room = "frames-surrogate"
    async with (
        await RawPeer.connect(ws_url(room), mint("observer", room=room)) as observer,
        await RawPeer.connect(ws_url(room), mint("mallory", room=room)) as mallory,
    ):
        await mallory.send(frame("u-1", "participant.set_attributes", f'{{"attributes":{{"x":"{escaped}"}}}}'))
        refused = await answer_to(mallory, "u-1")
        assert refused["error"]["code"] == ErrorCode.INVALID_PARAMS, refused
        await mallory.send(frame("u-2", "participant.set_attributes", f'{{"attributes":{{"{escaped}":1}}}}'))
        refused = await answer_to(mallory, "u-2")
        assert refused["error"]["code"] == ErrorCode.INVALID_PARAMS, refused
        assert await receives_nothing(observer, "participant.updated")
        assert (await mallory.result("ping"))["pong"] is True
        assert mallory.id in await present_ids(observer)


@pytest.mark.redis
@pytest.mark.parametrize("escaped", ["\\ud800", "\\udc00"])
async def test_a_lone_surrogate_in_a_broadcast_across_nodes_is_invalid_params_and_nobody_receives_it(
    two_nodes, mint, escaped
):
    node_a, node_b = two_nodes
    room = "frames-surrogate-bus"
    async with (
        await RawPeer.connect(node_a.ws_url(room), mint("olivia", room=room)) as on_a,
        await RawPeer.connect(node_b.ws_url(room), mint("oscar", room=room)) as on_b,
        await RawPeer.connect(node_a.ws_url(room), mint("mallory", room=room)) as mallory,
    ):
        params = (
            '{"toolkit":"messaging","tool":"broadcast",'
            f'"arguments":{{"type":"chat","message":{{"text":"a{escaped}b"}}}}}}'
        )
        await mallory.send(frame("bus-1", "tools.invoke", params))
        refused = await answer_to(mallory, "bus-1")
        assert refused["error"]["code"] == ErrorCode.INVALID_PARAMS, refused
        # Direct to the other node as well.
        params = (
            '{"toolkit":"messaging","tool":"send",'
            f'"arguments":{{"to":"{on_b.id}","type":"chat","message":"{escaped}"}}}}'
        )
        await mallory.send(frame("bus-2", "tools.invoke", params))
        refused = await answer_to(mallory, "bus-2")
        assert refused["error"]["code"] == ErrorCode.INVALID_PARAMS, refused
        for observer in (on_a, on_b):
            assert await receives_nothing(observer)
        # The bus still carries the next, proper message.
        await mallory.invoke("messaging", "broadcast", {"type": "chat", "message": "after"})
        for observer in (on_a, on_b):
            assert (await observer.notification("messaging.message"))["message"] == "after"


# --- NUL -------------------------------------------------------------------------------------


@pytest.mark.parametrize("attributes", [{"x": "a\u0000b"}, {"a\u0000b": 1}, {"x": {"y": ["\u0000"]}}])
async def test_nul_in_attributes_is_invalid_params(ws_url, mint, attributes):
    room = "frames-nul"
    async with (
        await RawPeer.connect(ws_url(room), mint("observer", room=room)) as observer,
        await RawPeer.connect(ws_url(room), mint("mallory", room=room)) as mallory,
    ):
        response = await mallory.request("participant.set_attributes", {"attributes": attributes})
        assert response["error"]["code"] == ErrorCode.INVALID_PARAMS, response
        assert await receives_nothing(observer, "participant.updated")
        assert (await mallory.result("participant.set_attributes", {"attributes": {"x": "ab"}}))["participant"][
            "attributes"
        ] == {"x": "ab"}


def ledger_rows(timeout: float, **filters: Any) -> list[ToolCall]:
    """Waits for ledger rows; run in a worker thread, whose own connection it closes after."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            rows = list(ToolCall.objects.filter(**filters))
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)
    finally:
        connection.close()


@pytest.fixture
def own_server(server: ServerProcess) -> Iterator[ServerProcess]:
    """A node of its own, for a test that may break it for whoever comes next."""
    process = ServerProcess(redis_url=server.env["REDIS_URL"] or None).start()
    yield process
    process.stop()


@pytest.mark.parametrize("field", ["toolkit", "tool"])
async def test_nul_in_an_invoked_name_does_not_stop_the_ledger(own_server, mint, project, field):
    room = "frames-nul-ledger"
    async with (
        await RawPeer.connect(own_server.ws_url(room), mint("alice", room=room)) as alice,
        await RawPeer.connect(own_server.ws_url(room), mint("mallory", room=room)) as mallory,
    ):
        names = {"toolkit": "participants", "tool": "list", field: "evil\u0000name"}
        refused = await mallory.invoke(names["toolkit"], names["tool"])
        assert refused["error"]["code"] in (ErrorCode.NOT_FOUND, ErrorCode.INVALID_PARAMS), refused
        assert "result" in await alice.invoke("participants", "list")
    # The ledger flushes every MESHSITE_LEDGER_FLUSH_SECONDS (0.5 s): the honest call is written.
    rows = await asyncio.to_thread(ledger_rows, 5, project=project, room_name=room, caller_identity="alice")
    assert [(r.toolkit, r.tool, r.status) for r in rows] == [("participants", "list", "ok")]


# --- many hostile frames at once -------------------------------------------------------------


async def test_every_frame_of_a_burst_of_hostile_frames_gets_exactly_one_answer(ws_url, mint):
    attributes = "participant.set_attributes"
    invoke_list = '{"toolkit":"participants","tool":"list","arguments":{},"timeout":%s}'
    with_id = {
        "h-nan": frame("h-nan", "tools.invoke", invoke_list % "NaN"),
        "h-inf": frame("h-inf", "tools.invoke", invoke_list % "-Infinity"),
        "h-big": frame("h-big", "tools.invoke", invoke_list % "1e400"),
        "h-surrogate": frame("h-surrogate", attributes, '{"attributes":{"x":"\\ud800"}}'),
        "h-low-surrogate": frame("h-low-surrogate", attributes, '{"attributes":{"x":"\\udfff"}}'),
        "h-nul": frame("h-nul", attributes, '{"attributes":{"x":"a\\u0000b"}}'),
        "h-deep": frame("h-deep", "ping", '{"a":' + "[" * 100 + "]" * 100 + "}"),
        "h-params": frame("h-params", "ping", "[1, 2]"),
        "h-method": frame("h-method", "no.such.method", "{}"),
        "h-timeout": frame("h-timeout", "tools.invoke", invoke_list % "-1"),
        "h-schema": frame("h-schema", "tools.invoke", '{"toolkit":"participants","tool":"list","arguments":{"x":1}}'),
        "h-register": frame(
            "h-register",
            "toolkits.register",
            '{"name":"x","tools":[{"name":"t","input_schema":{"$ref":"file:///etc/passwd"}}]}',
        ),
        "h-fine": frame("h-fine", "ping", "{}"),
    }
    without_id = [
        DEEP,
        "[" + frame("h-in-batch", "ping", "{}") + "]",
        "not json",
        '{"jsonrpc":"2.0","id":"h-trailing","method":"ping"} garbage',
    ]
    async with await RawPeer.connect(ws_url("frames"), mint("mallory", room="frames")) as mallory:
        frames = list(with_id.values()) + without_id
        for text in frames:
            await mallory.send(text)
        await mallory.send(frame("h-last", "ping", "{}"))
        await answer_to(mallory, "h-last")
        await asyncio.sleep(0.3)  # stragglers, if any
        answers = [m for m in mallory.inbox if "method" not in m]
        counts = Counter(json.dumps(m.get("id")) for m in answers)
        expected = Counter(json.dumps(request_id) for request_id in with_id)
        expected[json.dumps(None)] = len(without_id)
        assert counts == expected, answers
        by_id = {m["id"]: m for m in answers if m.get("id") is not None}
        assert by_id["h-fine"]["result"]["pong"] is True
        assert {request_id: by_id[request_id].get("error", {}).get("code") for request_id in with_id} == {
            "h-nan": ErrorCode.INVALID_PARAMS,
            "h-inf": ErrorCode.INVALID_PARAMS,
            "h-big": ErrorCode.INVALID_PARAMS,
            "h-surrogate": ErrorCode.INVALID_PARAMS,
            "h-low-surrogate": ErrorCode.INVALID_PARAMS,
            "h-nul": ErrorCode.INVALID_PARAMS,
            "h-deep": ErrorCode.INVALID_REQUEST,
            "h-params": ErrorCode.INVALID_PARAMS,
            "h-method": ErrorCode.METHOD_NOT_FOUND,
            "h-timeout": ErrorCode.INVALID_PARAMS,
            "h-schema": ErrorCode.INVALID_ARGUMENTS,
            "h-register": ErrorCode.INVALID_PARAMS,
            "h-fine": None,
        }
        assert (await mallory.result("ping"))["pong"] is True
