"""Random frames thrown at a live server never take it down or disturb other participants."""

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e]

METHODS = [
    "tools.invoke",
    "tools.cancel",
    "toolkits.register",
    "toolkits.unregister",
    "toolkits.list",
    "participant.set_attributes",
    "ping",
    "tools.progress",
    "connection.refresh_token",
    "nope",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
params = st.fixed_dictionaries(
    {},
    optional={
        "toolkit": st.sampled_from(["messaging", "participants", "calc", ""]) | st.text(max_size=8),
        "tool": st.sampled_from(["send", "broadcast", "list", "get"]) | json_values,
        "arguments": json_values,
        "name": json_values,
        "tools": json_values,
        "attributes": json_values,
        "call_id": json_values,
        "timeout": json_values,
        "participant_id": json_values,
        "on_behalf_of_id": json_values,
        "token": json_values,
    },
)
requests = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": st.sampled_from(METHODS) | json_values},
    optional={"id": st.integers() | st.text(max_size=8) | json_values, "params": params | json_values},
)
# Hostile frames from the trust-boundary review: deep nesting, numbers that are not JSON, lone
# surrogates, NUL where the room stores text, huge non-ASCII strings.
deep_frames = st.integers(min_value=60, max_value=1500).map(
    lambda depth: '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + "[" * depth + "]" * depth + "}}"
)
not_json_numbers = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]).map(
    lambda number: (
        '{"jsonrpc":"2.0","id":2,"method":"tools.invoke","params":{"toolkit":"messaging",'
        f'"tool":"broadcast","arguments":{{"type":"t","message":{number}}},"timeout":{number}}}}}'
    )
)
surrogates = st.sampled_from(["\\ud800", "\\udfff", "a\\ud83d", "\\u0000"]).map(
    lambda text: (
        '{"jsonrpc":"2.0","id":3,"method":"participant.set_attributes","params":{"attributes":{"x":"' + text + '"}}}'
    )
)
huge_strings = st.integers(min_value=1_000, max_value=300_000).map(
    lambda size: json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools.invoke",
            "params": {"toolkit": "messaging", "tool": "broadcast", "arguments": {"type": "t", "message": "é" * size}},
        },
        ensure_ascii=False,
    )
)
frames = st.one_of(
    deep_frames,
    not_json_numbers,
    surrogates,
    huge_strings,
    requests.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": json_values, "result": json_values}).map(json.dumps),
)


async def throw(ws_url, mallory_token: str, witness: RawPeer, batch: list[str]) -> None:
    async with await RawPeer.connect(ws_url("lobby"), mallory_token) as mallory:
        for frame in batch:
            await mallory.send(frame)
        # Whatever it sent, mallory's connection still answers (or was closed deliberately) ...
        if not mallory.closed:
            assert (await mallory.result("ping", timeout=10))["pong"] is True
    # ... and the witness, connected all along, is served.
    assert (await witness.result("ping", timeout=10))["pong"] is True


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, min_size=1, max_size=15))
def test_random_frames_never_break_the_server(ws_url, mint, batch):
    async def scenario() -> None:
        async with await RawPeer.connect(ws_url("lobby"), mint("witness")) as witness:
            await throw(ws_url, mint("mallory"), witness, batch)

    asyncio.run(scenario())
