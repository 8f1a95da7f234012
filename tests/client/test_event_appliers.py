"""The three appliers of room events (the server's room cache, the Python client, room.js) agree:
each applies the same stale `room.ready` and event stream (tests/fixtures/room_events.json) and
ends in the same room."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from meshsite_client.state import RoomState as ClientRoomState

from rooms.mesh.state import RoomState as ServerRoomState
from tests.support.services import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "room_events.json").read_text())
EXPECTED_TOOLKITS = sorted(tuple(pair) for pair in FIXTURE["expected"]["toolkits"])


def test_the_servers_room_cache_applies_the_shared_events():
    ready = FIXTURE["ready"]
    state = ServerRoomState(room_id=1)
    state.reset([(p, "node-a") for p in ready["participants"]], ready["toolkits"], "node-a")
    for event in FIXTURE["events"]:
        state.apply({**event, "internal": {"node": "node-b"}})
    assert {pid: p["attributes"] for pid, p in state.participants.items()} == FIXTURE["expected"]["participants"]
    assert sorted(state.hosted) == EXPECTED_TOOLKITS


def test_the_python_client_applies_the_shared_events():
    state = ClientRoomState()
    state.load_ready(FIXTURE["ready"])
    for event in FIXTURE["events"]:
        state.apply(event["method"], event["params"])
    assert {pid: p.attributes for pid, p in state.participants.items()} == FIXTURE["expected"]["participants"]
    assert sorted((t.participant_id, t.name) for t in state.toolkits) == EXPECTED_TOOLKITS


APPLY_IN_NODE = """
import { RoomClient } from "%s";
const fixture = JSON.parse(process.argv[2]);
const room = new RoomClient("ws://unused", "unused");
room._loadReady(fixture.ready);
const link = {};
for (const event of fixture.events) room._onNotification(link, event.method, event.params);
const participants = Object.fromEntries([...room.participants].map(([id, p]) => [id, p.attributes]));
const toolkits = room.toolkits.map((t) => [t.participant_id, t.name]);
console.log(JSON.stringify({ participants, toolkits }));
"""


def test_room_js_applies_the_shared_events(tmp_path):
    if shutil.which("node") is None:
        if REQUIRE_SERVICES:
            pytest.fail("MESHSITE_REQUIRE_SERVICES=1 but Node.js is not installed", pytrace=False)
        pytest.skip("needs Node.js to run room.js outside a browser")
    script = tmp_path / "apply.mjs"
    script.write_text(APPLY_IN_NODE % (ROOT / "static" / "meshsite" / "room.js").as_uri())
    result = subprocess.run(
        ["node", str(script), json.dumps(FIXTURE)], capture_output=True, text=True, timeout=30, check=True
    )
    applied = json.loads(result.stdout)
    assert applied["participants"] == FIXTURE["expected"]["participants"]
    assert sorted(tuple(pair) for pair in applied["toolkits"]) == EXPECTED_TOOLKITS
