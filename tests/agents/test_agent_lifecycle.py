"""Agents API gaps (issue 7, item 11), end to end with a real server and agent host: progress
relayed through `agents.ask`, stopping agents (disable, `mesh stop-agent`, the admin), titles as
display names, user code from MESHSITE_AGENT_PATHS, and the names of several instances."""

import asyncio
import io
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from meshsite_client import RoomClient

from agents.actions import do_create_service
from agents.models import Dispatch
from tests.support.peer import RawPeer
from tests.support.servers import AgentHostProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def call_agent(peer: RawPeer, name: str, **extra: Any) -> dict[str, Any]:
    return await peer.invoke("agents", "call", {"name": name, **extra}, timeout=20)


async def called(peer: RawPeer, name: str) -> dict[str, Any]:
    response = await call_agent(peer, name)
    assert "result" in response, response
    output: dict[str, Any] = response["result"]["output"]
    return output


async def ask(peer: RawPeer, agent: str, arguments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return await peer.invoke("agents", "ask", {"agent": agent, "arguments": arguments}, **extra)


async def left(peer: RawPeer, identity: str, timeout: float = 10) -> dict[str, Any]:
    message = await peer.expect(
        lambda m: m.get("method") == "participant.left" and m["params"].get("identity") == identity, timeout
    )
    return dict(message["params"])


def mesh(*args: str) -> Any:
    out = io.StringIO()
    call_command("mesh", *args, stdout=out)
    return json.loads(out.getvalue())


def dispatch(dispatch_id: int) -> Dispatch:
    return Dispatch.objects.get(id=dispatch_id)


async def present(peer: RawPeer) -> dict[str, dict[str, Any]]:
    listed = (await peer.invoke("participants", "list"))["result"]["output"]["participants"]
    return {p["identity"]: p for p in listed}


# --- 1. progress -------------------------------------------------------------------------------


async def test_ask_relays_the_agents_progress_to_the_asker(ws_url, mint, agent_host, project):
    await asyncio.to_thread(do_create_service, project, "reporting", class_path="tests.agents.sample_agents.Reporting")
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        await called(alice, "reporting")
        answer = await ask(alice, "reporting", {"text": "a b c"}, call_id="my-ask")
        assert answer["result"] == {"call_id": "my-ask", "output": {"words": 3}}
        # the agent's tools.progress for the inner call reached alice under her own call_id, in order
        progress = [m["params"] for m in alice.inbox if m.get("method") == "tools.progress"]
        assert progress == [
            {"call_id": "my-ask", "progress": {"stage": "reading"}},
            {"call_id": "my-ask", "progress": {"stage": "counting"}},
        ]
        alice.inbox.clear()

        # agents.invoke_tool relays progress as tools.invoke does
        invoked = await alice.invoke(
            "agents",
            "invoke_tool",
            {"toolkit": "reporting", "tool": "ask", "arguments": {"text": "x"}},
            call_id="via-invoke-tool",
        )
        assert invoked["result"]["output"] == {"words": 1}
        stages = [m["params"]["progress"]["stage"] for m in alice.inbox if m.get("method") == "tools.progress"]
        assert stages == ["reading", "counting"]

    # and the client's on_progress gets it
    seen: list[Any] = []
    async with RoomClient(ws_url("lobby"), mint("bob")) as bob:
        output = await bob.invoke(
            "agents", "ask", {"agent": "reporting", "arguments": {"text": "one two"}}, on_progress=seen.append
        )
    assert (output, seen) == ({"words": 2}, [{"stage": "reading"}, {"stage": "counting"}])


# --- 2. stopping ---------------------------------------------------------------------------------


async def test_disabling_a_service_stops_its_agents_after_their_asks(ws_url, mint, agent_host, project):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        slow = await called(alice, "slow")
        await called(alice, "flaky")
        asking = asyncio.create_task(ask(alice, "slow", {"seconds": 1}, timeout=20))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        disabled = await asyncio.to_thread(mesh, "disable-service", "--project", project.slug, "--name", "slow")
        assert disabled == {"name": "slow", "enabled": False, "stopped": 1}
        # the ask in flight is answered first, then the agent leaves
        assert (await asking)["result"]["output"] == {"slept": 1}
        await left(alice, "slow")
        assert time.monotonic() - started < 5
        ended = await asyncio.to_thread(dispatch, slow["dispatch_id"])
        assert (ended.status, ended.error) == ("stopped", "the service was disabled")
        assert ended.ended_at is not None
        assert (await call_agent(alice, "slow"))["error"]["code"] == -32002
        # the host and its other agents carry on
        assert (await ask(alice, "flaky", {"text": "still here"}))["result"]["output"] == {"echo": "still here"}


async def test_stop_agent_stops_one_agent_which_can_be_called_again(ws_url, mint, agent_host, project):
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        flaky = await called(alice, "flaky")
        await called(alice, "word-counter")
        stopped = await asyncio.to_thread(
            mesh, "stop-agent", "--project", project.slug, "--room", "lobby", "--identity", "flaky"
        )
        assert [(s["dispatch_id"], s["identity"]) for s in stopped] == [(flaky["dispatch_id"], "flaky")]
        assert stopped[0]["status"] in ("stopping", "stopped")
        await left(alice, "flaky", timeout=5)
        ended = await asyncio.to_thread(dispatch, flaky["dispatch_id"])
        assert (ended.status, ended.error) == ("stopped", "stopped with manage.py mesh stop-agent")
        assert (await ask(alice, "word-counter", {"text": "a b"}))["result"]["output"]["words"] == 2
        assert (await ask(alice, "flaky", {"text": "hi"}))["error"]["code"] == -32002

        again = await called(alice, "flaky")
        assert again["created"] is True and again["dispatch_id"] != flaky["dispatch_id"]
        assert (await ask(alice, "flaky", {"text": "back"}))["result"]["output"] == {"echo": "back"}

    with pytest.raises(CommandError, match="no running agent 'nobody' in room 'lobby'"):
        await asyncio.to_thread(
            mesh, "stop-agent", "--project", project.slug, "--room", "lobby", "--identity", "nobody"
        )
    with pytest.raises(CommandError, match="give --room and --identity, or --dispatch"):
        await asyncio.to_thread(mesh, "stop-agent", "--project", project.slug, "--room", "lobby")


async def test_the_admin_stops_selected_agents(ws_url, mint, agent_host, client):
    def stop_in_admin(dispatch_ids: list[int]) -> list[str]:
        response = client.post(
            "/admin/agents/dispatch/", {"action": "stop", "_selected_action": dispatch_ids}, follow=True
        )
        assert response.status_code == 200
        return [str(m) for m in response.context["messages"]]

    root = await asyncio.to_thread(User.objects.create_superuser, "root", "root@example.com", "pw")
    await asyncio.to_thread(client.force_login, root)
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        flaky = await called(alice, "flaky")
        slow = await called(alice, "slow")
        messages = await asyncio.to_thread(stop_in_admin, [flaky["dispatch_id"]])
        assert messages == ["Stopping 1 agent(s)."]
        await left(alice, "flaky", timeout=5)
        ended = await asyncio.to_thread(dispatch, flaky["dispatch_id"])
        assert (ended.status, ended.error) == ("stopped", "stopped by root in the admin")
        assert (await asyncio.to_thread(dispatch, slow["dispatch_id"])).status == "running"
        again = await asyncio.to_thread(stop_in_admin, [flaky["dispatch_id"], slow["dispatch_id"]])
        assert again == ["Stopping 1 agent(s). 1 had already ended."]
        await left(alice, "slow", timeout=5)


# --- 3. titles ---------------------------------------------------------------------------------


async def test_an_agents_display_name_is_its_title(ws_url, mint, agent_host, project):
    service = await asyncio.to_thread(
        do_create_service, project, "tally", class_path="agents.demo.WordCounter", config={"title": "Tally bot"}
    )
    assert service.title == "Tally bot"  # the config's title, as the running agent has it
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        await called(alice, "word-counter")
        await called(alice, "tally")
        participants = await present(alice)
        assert (participants["word-counter"]["name"], participants["tally"]["name"]) == ("Word counter", "Tally bot")
        assert participants["tally"]["attributes"]["agent"]["title"] == "Tally bot"
        agents = {a["name"]: a for a in (await alice.invoke("agents", "list"))["result"]["output"]["agents"]}
        assert (agents["word-counter"]["title"], agents["tally"]["title"]) == ("Word counter", "Tally bot")
        assert (await ask(alice, "tally", {"text": "one"}))["result"]["output"]["words"] == 1


# --- 4. user code --------------------------------------------------------------------------------

USER_AGENT = """
from meshsite_client.agents import TaskRunner


class Shouter(TaskRunner):
    name = "shouter"
    title = "Shouter"
    description = "Says it louder."
    input_schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    output_schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    async def ask(self, context, arguments):
        return {"text": arguments["text"].upper()}
"""


@pytest.fixture
def user_agents(tmp_path: Path, settings: Any) -> Iterator[tuple[Path, str]]:
    """A module that is neither installed nor on the path, in a directory of MESHSITE_AGENT_PATHS."""
    module = f"my_agents_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(USER_AGENT)
    settings.MESHSITE_AGENT_PATHS = [str(tmp_path)]
    yield tmp_path, module
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
    sys.modules.pop(module, None)


async def test_a_users_own_agent_class_is_deployed_from_the_agent_paths(ws_url, mint, server, project, user_agents):
    directory, module = user_agents
    assert str(directory) not in sys.path
    service = await asyncio.to_thread(do_create_service, project, "shouter", class_path=f"{module}.Shouter")
    assert (service.title, service.description) == ("Shouter", "Says it louder.")
    host = AgentHostProcess(server, env={"MESHSITE_AGENT_PATHS": str(directory)}).start()
    try:
        async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
            await called(alice, "shouter")
            assert (await ask(alice, "shouter", {"text": "hello"}))["result"]["output"] == {"text": "HELLO"}
    finally:
        host.stop()


# --- 5. several instances ------------------------------------------------------------------------


async def test_several_instances_are_named_name_then_name_2_and_all_answer(ws_url, mint, agent_host, project):
    await asyncio.to_thread(
        do_create_service, project, "counter", class_path="agents.demo.WordCounter", allow_multiple=True
    )
    async with await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice:
        first = await called(alice, "counter")
        second = await called(alice, "counter")
        assert [(c["identity"], c["created"]) for c in (first, second)] == [("counter", True), ("counter-2", True)]
        assert first["participant_id"] != second["participant_id"]
        participants = await present(alice)
        assert {participants[name]["agent"] for name in ("counter", "counter-2")} == {"counter", "counter-2"}
        assert (await ask(alice, "counter", {"text": "a"}))["result"]["output"]["words"] == 1
        assert (await ask(alice, "counter-2", {"text": "a b"}))["result"]["output"]["words"] == 2

        # a stopped instance's name is free again for the next one
        await asyncio.to_thread(mesh, "stop-agent", "--project", project.slug, "--dispatch", str(second["dispatch_id"]))
        await left(alice, "counter-2", timeout=5)
        third = await called(alice, "counter")
        assert (third["identity"], third["created"]) == ("counter-2", True)
        assert (await ask(alice, "counter-2", {"text": "a b c"}))["result"]["output"]["words"] == 3
