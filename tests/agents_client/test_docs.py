"""The examples in docs/agents.md run as written: offline, and against the real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from meshsite_client import RoomClient, ToolContext, ToolFailed, Toolkit, tool
from meshsite_client.agents import TaskRunner
from pydantic_ai.models.test import TestModel

from .fakes import FakeRoom
from .live import agent_participant, running, until

DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def load_examples() -> dict[str, Any]:
    """Runs every python block (each in its own namespace, as a module would) and collects
    what they define."""
    found: dict[str, Any] = {}
    for index, block in enumerate(python_blocks()):
        namespace: dict[str, Any] = {"__name__": f"agents_doc_{index}"}
        exec(compile(block, f"{DOC}:block{index}", "exec"), namespace)
        found.update({k: v for k, v in namespace.items() if not k.startswith("__")})
    return found


@pytest.fixture(scope="module")
def ex() -> dict[str, Any]:
    return load_examples()


def test_the_page_has_its_examples_and_the_deployment_placeholder():
    assert len(python_blocks()) >= 10
    assert "## Deploying agents as services" in DOC.read_text()


async def test_the_offline_examples_answer(ex):
    assert await ex["adder"].answer({"numbers": [1, 2, 3.5]}) == {"total": 6.5, "count": 3}
    assert await ex["oracle"].answer({"question": "The answer?"}) == {"content": "Forty-two."}
    assert await ex["cities"].answer({"prompt": "Lisbon?"}) == {"output": {"name": "Lisbon", "population": 545000}}
    assert await ex["WordCounter"]().answer({"text": "a b"}) == {"words": 2}


def test_the_extension_example_extends(ex):
    strict = ex["StrictLibrarian"]()
    assert strict.rules == ["Only answer about books on the shelf.", "Never guess an author."]
    assert [t.name for t in strict.exposed_toolkits()] == ["strict-librarian"]
    assert [t.name for t in ex["Librarian"]().exposed_toolkits()] == ["shelf", "librarian"]
    assert "On the shelf: dune, emma" in strict.chat_context().messages[0]["content"]
    room = FakeRoom([{"name": "calc", "participant_id": "p_calc", "tools": [{"name": "add"}]}])
    agent = ex["calculator_agent"](room, TestModel())
    assert [name for toolset in agent.toolsets for name in getattr(toolset, "tools", {})] == ["calc_add"]


async def test_the_word_counter_example_through_the_server(ex, ws_url, mint):
    async with running(ex["WordCounter"](), ws_url("lobby"), mint("wordcount", role="agent")):
        assert await ex["ask_the_counter"](ws_url("lobby"), mint("alice")) == {"words": 6}


async def test_the_librarian_example_through_the_server(ex, ws_url, mint):
    seen: list[ToolContext] = []

    @tool
    async def get(title: str, ctx: ToolContext) -> str:
        seen.append(ctx)
        return f"{title}: a classic"

    async with (
        RoomClient(ws_url("lobby"), mint("critic")) as critic,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        broadcast = asyncio.ensure_future(alice.wait_for("messaging.message", timeout=10))
        async with running(ex["Librarian"](), ws_url("lobby"), mint("librarian", role="agent"), wait=False) as handle:
            await critic.register_toolkit(Toolkit("reviews", [get]))
            await handle.started()
            assert (await broadcast)["message"] == {"text": "librarian is open"}
            await until(alice, lambda: {"librarian", "shelf"} <= {t.name for t in alice.toolkits})
            assert await alice.invoke("shelf", "list_books", {}) == ["dune", "emma"]
            answer = await alice.invoke("librarian", "ask", {"title": "Dune"})
            assert answer == {"author": "Frank Herbert", "review": "dune: a classic"}
            assert seen[0].on_behalf_of is not None and seen[0].on_behalf_of["identity"] == "alice"
            with pytest.raises(ToolFailed, match="not on the shelf"):
                await alice.invoke("librarian", "ask", {"title": "Ulysses"})


async def test_the_parrot_example_through_the_server(ex, ws_url, mint):
    parrot = ex["Parrot"]()
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        running(parrot, ws_url("lobby"), mint("parrot", role="agent")),
    ):
        await until(alice, lambda: agent_participant(alice, "parrot") is not None)
        target = agent_participant(alice, "parrot").id
        for text in ("hello", "again"):
            reply = asyncio.ensure_future(alice.wait_for("messaging.message", timeout=10))
            await alice.send_message(target, "chat", {"text": text})
            assert (await reply)["message"] == {"text": text}
        [chat] = parrot.chats.values()
        assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user", "assistant"]


async def test_the_running_examples_serve_and_stop(ex, ws_url, mint):
    runner: TaskRunner = ex["adder"]
    await ex["serve_for_a_while"](runner, ws_url("lobby"), mint("adder", role="agent"), 0.2)
    assert not runner.started
    stop = asyncio.Event()
    stop.set()
    await ex["serve_until"](ex["oracle"], ws_url("lobby"), mint("oracle", role="agent"), stop)
    assert not ex["oracle"].started


async def test_the_langchain_tools_example_through_the_server(ex, ws_url, mint):
    @tool
    async def add(a: float, b: float) -> float:
        return a + b

    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(Toolkit("calc", [add]))
        await until(alice, lambda: any(t.name == "calc" for t in alice.toolkits))
        assert await ex["add_with_langchain"](alice) == 3
