"""Agents against the real server: presence, asks both ways, failures, delegation, lifecycle, frameworks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate
from meshsite_client import InvalidArguments, Replaced, RoomClient, ToolContext, ToolFailed, Toolkit, tool
from meshsite_client.agents import AskContext, MissingToolkits, SingleRoomAgent, TaskRunner, run_agent
from meshsite_client.integrations import function_task_runner
from meshsite_client.integrations.langchain import LangChainTaskRunner, langchain_tools
from meshsite_client.integrations.pydantic_ai import PydanticAITaskRunner, pydantic_ai_tools
from pydantic import BaseModel
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.models.test import TestModel

from .fakes import calling_model
from .live import agent_participant, running, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ROOT = Path(__file__).resolve().parents[2]


class Question(BaseModel):
    text: str


class Answer(BaseModel):
    words: int


class Counter(TaskRunner):
    name = "counter"
    title = "Word counter"
    description = "Counts the words of a text."
    metadata = {"version": 2}
    input_schema = Question
    output_schema = Answer

    async def ask(self, context: AskContext, arguments: Question) -> Answer:
        if arguments.text == "boom":
            raise RuntimeError("exploded on purpose")
        if arguments.text == "lie":
            return {"words": "many"}  # type: ignore[return-value]
        return Answer(words=len(arguments.text.split()))


def calc_toolkit(seen: list[ToolContext]) -> Toolkit:
    @tool
    async def add(a: float, b: float, ctx: ToolContext) -> float:
        """Add two numbers."""
        seen.append(ctx)
        return a + b

    return Toolkit("calc", [add], description="Arithmetic")


async def test_a_task_runner_joins_as_an_agent_and_answers_asks(ws_url, mint):
    agent = Counter()
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        running(agent, ws_url("lobby"), mint("counter-bot", role="agent")),
    ):
        await until(alice, lambda: "agent" in getattr(agent_participant(alice, "counter-bot"), "attributes", {}))
        bot = agent_participant(alice, "counter-bot")
        assert bot.role == "agent"
        assert bot.attributes == agent.agent_attributes()
        assert bot.attributes["agent"]["kind"] == "task_runner"
        assert bot.attributes["agent"]["metadata"] == {"version": 2}
        listed = {t.name: t for t in await alice.list_toolkits()}
        ask = listed["counter"].tool("ask")
        assert ask is not None and listed["counter"].participant_id == bot.id and listed["counter"].public
        assert ask.input_schema == Question.model_json_schema()
        assert ask.description == "Counts the words of a text."
        assert await alice.invoke("counter", "ask", {"text": "one two three"}) == {"words": 3}


async def test_bad_arguments_are_refused_and_a_failing_or_lying_ask_is_an_error_while_the_agent_stays(ws_url, mint):
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        running(Counter(), ws_url("lobby"), mint("counter-bot", role="agent")),
    ):
        await until(alice, lambda: any(t.name == "counter" for t in alice.toolkits))
        with pytest.raises(InvalidArguments) as refused:
            await alice.invoke("counter", "ask", {"text": 7})
        assert refused.value.data["errors"][0]["path"] == "/text"
        with pytest.raises(ToolFailed, match="exploded on purpose"):
            await alice.invoke("counter", "ask", {"text": "boom"})
        with pytest.raises(ToolFailed, match="output schema"):
            await alice.invoke("counter", "ask", {"text": "lie"})
        assert await alice.invoke("counter", "ask", {"text": "still here"}) == {"words": 2}
        assert agent_participant(alice, "counter-bot") is not None


async def test_an_ask_can_invoke_another_participants_tool_on_behalf_of_the_asker(ws_url, mint):
    class Adder(TaskRunner):
        name = "adder"
        requires = ["calc"]
        input_schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}
        output_schema = {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]}

        async def ask(self, context: AskContext, arguments: dict[str, Any]) -> dict[str, Any]:
            await context.progress({"step": "adding"})
            return {"sum": await context.invoke("calc", "add", arguments)}

    seen: list[ToolContext] = []
    progress: list[Any] = []
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        async with running(Adder(), ws_url("lobby"), mint("adder-bot", role="agent")):
            await until(alice, lambda: any(t.name == "adder" for t in alice.toolkits))
            output = await alice.invoke("adder", "ask", {"a": 2, "b": 3}, on_progress=progress.append)
    assert output == {"sum": 5}
    assert progress == [{"step": "adding"}]
    [ctx] = seen
    assert ctx.caller["identity"] == "adder-bot"
    assert ctx.on_behalf_of is not None and ctx.on_behalf_of["identity"] == "alice"


async def test_an_agent_waits_for_the_toolkits_it_requires(ws_url, mint):
    runner = function_task_runner(lambda: "ready", name="waiter", requires=["late"])
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        running(runner, ws_url("lobby"), mint("waiter-bot", role="agent"), wait=False) as handle,
    ):
        await asyncio.sleep(0.5)
        assert not runner.started
        await bob.register_toolkit(Toolkit("late", [tool(lambda: 1, name="one")]))
        await handle.started()
        assert await bob.invoke("waiter", "ask", {}) == "ready"


async def test_a_missing_requirement_fails_run_agent_naming_it(ws_url, mint):
    runner = function_task_runner(lambda: "never", name="waiter", requires=["nowhere"])
    with pytest.raises(MissingToolkits, match="nowhere"):
        await run_agent(runner, ws_url("lobby"), mint("waiter-bot", role="agent"), requires_timeout=0.3)


async def test_stopping_drains_an_ask_in_flight_then_the_agent_leaves(ws_url, mint):
    entered, release = asyncio.Event(), asyncio.Event()

    class Slow(TaskRunner):
        name = "slow"

        async def ask(self, context: AskContext, arguments: Any) -> str:
            entered.set()
            await release.wait()
            return "finished"

    agent = Slow()
    async with RoomClient(ws_url("lobby"), mint("alice")) as alice:
        async with running(agent, ws_url("lobby"), mint("slow-bot", role="agent")) as handle:
            await until(alice, lambda: any(t.name == "slow" for t in alice.toolkits))
            call = asyncio.create_task(alice.invoke("slow", "ask", {}))
            await entered.wait()
            handle.stop.set()
            await asyncio.sleep(0.3)
            assert not call.done() and not handle.task.done()
            assert agent_participant(alice, "slow-bot") is not None
            release.set()
            assert await call == "finished"
            await asyncio.wait_for(handle.task, 10)
        await until(alice, lambda: agent_participant(alice, "slow-bot") is None)
        assert not any(t.name == "slow" for t in alice.toolkits)


async def test_a_single_room_agent_exposes_extra_toolkits_next_to_its_ask(ws_url, mint):
    class Librarian(TaskRunner):
        name = "librarian"
        rules = ["Only answer from the catalogue."]

        def exposed_toolkits(self) -> list[Toolkit]:
            @tool
            def catalogue() -> list[str]:
                """List the books."""
                return ["Dune", "Emma"]

            return [*super().exposed_toolkits(), Toolkit("catalogue", [catalogue])]

        async def ask(self, context: AskContext, arguments: Any) -> Any:
            return await context.invoke("catalogue", "catalogue", {})

    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        running(Librarian(), ws_url("lobby"), mint("librarian-bot", role="agent")),
    ):
        await until(alice, lambda: {"librarian", "catalogue"} <= {t.name for t in alice.toolkits})
        assert await alice.invoke("catalogue", "catalogue", {}) == ["Dune", "Emma"]
        assert await alice.invoke("librarian", "ask", {}) == ["Dune", "Emma"]


async def test_a_plain_single_room_agent_appears_with_its_attributes(ws_url, mint):
    agent = SingleRoomAgent(name="watcher", title="Watcher", description="Watches the room.")
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        running(agent, ws_url("lobby"), mint("watcher", role="agent")),
    ):
        await until(alice, lambda: "agent" in getattr(agent_participant(alice, "watcher"), "attributes", {}))
        assert agent_participant(alice, "watcher").attributes["agent"] == {
            "name": "watcher",
            "title": "Watcher",
            "description": "Watches the room.",
            "kind": "agent",
            "metadata": {},
        }


async def test_cancelling_run_agent_stops_the_agent_and_leaves(ws_url, mint):
    runner = function_task_runner(lambda: "hi", name="canceller")
    async with RoomClient(ws_url("lobby"), mint("alice")) as alice:
        task = asyncio.create_task(run_agent(runner, ws_url("lobby"), mint("cancel-bot", role="agent")))
        await until(alice, lambda: any(t.name == "canceller" for t in alice.toolkits))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not runner.started
        await until(alice, lambda: agent_participant(alice, "cancel-bot") is None)


async def test_run_agent_raises_when_the_connection_ends_for_good(ws_url, mint):
    runner = function_task_runner(lambda: "hi", name="replaceable")
    async with (
        running(runner, ws_url("lobby"), mint("twin", role="agent", agent="twin"), reconnect=False) as handle,
        RoomClient(ws_url("lobby"), mint("twin", role="agent", agent="twin")),
    ):
        with pytest.raises(Replaced):
            await asyncio.wait_for(handle.task, 10)
    assert not runner.started


# -- frameworks through the server -----------------------------------------------------------------


async def test_a_langchain_runner_answers_through_the_server(ws_url, mint):
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "{question}")])
    runner = LangChainTaskRunner(
        prompt | FakeListChatModel(responses=["Forty-two."]),
        name="oracle",
        input_schema={"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]},
        output_schema={"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"]},
    )
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        running(runner, ws_url("lobby"), mint("oracle-bot", role="agent")),
    ):
        await until(alice, lambda: any(t.name == "oracle" for t in alice.toolkits))
        assert await alice.invoke("oracle", "ask", {"question": "The answer?"}) == {"content": "Forty-two."}


async def test_a_pydantic_ai_runner_answers_through_the_server(ws_url, mint):
    class City(BaseModel):
        name: str
        population: int

    agent = PydanticAgent(TestModel(custom_output_args={"name": "Lisbon", "population": 545000}), output_type=City)
    runner = PydanticAITaskRunner(agent, name="cities")
    async with (
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
        running(runner, ws_url("lobby"), mint("cities-bot", role="agent")),
    ):
        await until(alice, lambda: any(t.name == "cities" for t in alice.toolkits))
        answer = await alice.invoke("cities", "ask", {"prompt": "Lisbon?"})
        assert answer == {"output": {"name": "Lisbon", "population": 545000}}


async def test_langchain_tools_call_a_toolkit_hosted_by_another_participant(ws_url, mint):
    seen: list[ToolContext] = []
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        await until(alice, lambda: any(t.name == "calc" for t in alice.toolkits))
        [add] = langchain_tools(alice, ["calc"])
        assert add.name == "calc_add" and add.description == "Add two numbers."
        assert await add.ainvoke({"a": 1.5, "b": 2}) == 3.5
        assert seen[0].caller["identity"] == "alice"


async def test_pydantic_ai_tools_call_a_toolkit_hosted_by_another_participant(ws_url, mint):
    seen: list[ToolContext] = []
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        await until(alice, lambda: any(t.name == "calc" for t in alice.toolkits))
        agent = PydanticAgent(calling_model("calc_add", {"a": 2, "b": 5}), tools=pydantic_ai_tools(alice))
        result = await agent.run("2 + 5?")
        assert json.loads(result.output) == 7
        assert seen[0].caller["identity"] == "alice"


async def test_a_pydantic_ai_runner_uses_room_tools_on_behalf_of_the_asker(ws_url, mint):
    seen: list[ToolContext] = []
    runner = PydanticAITaskRunner(
        PydanticAgent(calling_model("calc_add", {"a": 1, "b": 1})),
        name="mathbot",
        requires=["calc"],
        room_tools=["calc"],
    )
    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), mint("alice")) as alice,
    ):
        await bob.register_toolkit(calc_toolkit(seen))
        async with running(runner, ws_url("lobby"), mint("mathbot", role="agent")):
            await until(alice, lambda: any(t.name == "mathbot" for t in alice.toolkits))
            assert await alice.invoke("mathbot", "ask", {"prompt": "1+1?"}) == {"output": "2.0"}
    assert seen[0].caller["identity"] == "mathbot"
    assert seen[0].on_behalf_of is not None and seen[0].on_behalf_of["identity"] == "alice"


# -- the command line -----------------------------------------------------------------------------


async def test_the_command_line_runs_an_agent_until_interrupted(ws_url, mint):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with RoomClient(ws_url("lobby"), mint("alice")) as alice:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "meshsite_client.agents",
            "run",
            "tests.agents_client.example_agents:Shouter",
            "--url",
            ws_url("lobby"),
            "--token",
            mint("shouter", role="agent"),
            "--config",
            json.dumps({"suffix": "!!", "title": "Loud"}),
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        try:
            await until(
                alice, lambda: "agent" in getattr(agent_participant(alice, "shouter"), "attributes", {}), timeout=20
            )
            bot = agent_participant(alice, "shouter")
            assert bot.role == "agent" and bot.attributes["agent"]["title"] == "Loud"
            assert await alice.invoke("shouter", "ask", {"text": "hi"}) == {"text": "HI!!"}
            process.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(process.wait(), 20) == 0
            await until(alice, lambda: agent_participant(alice, "shouter") is None)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.stderr is not None
        assert b"agent shouter is running in room lobby" in await process.stderr.read()
