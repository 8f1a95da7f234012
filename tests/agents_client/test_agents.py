"""Agent, SingleRoomAgent and TaskRunner offline: identity, schemas, validation both ways, lifecycle."""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest
from meshsite_client import ToolContext, Toolkit, tool
from meshsite_client.agents import (
    Agent,
    AgentStopped,
    AskContext,
    ChatContext,
    InvalidAnswer,
    InvalidAskArguments,
    MissingToolkits,
    SingleRoomAgent,
    TaskRunner,
)
from pydantic import BaseModel

from .fakes import FakeRoom


class Question(BaseModel):
    text: str
    limit: int = 10


class Answer(BaseModel):
    words: int


class Counter(TaskRunner):
    name = "counter"
    title = "Word counter"
    description = "Counts the words of a text."
    rules = ["Count whitespace-separated words."]
    metadata = {"version": 1}
    input_schema = Question
    output_schema = Answer

    async def ask(self, context: AskContext, arguments: Question) -> Answer:
        return Answer(words=min(len(arguments.text.split()), arguments.limit))


class Echo(TaskRunner):
    name = "echo"
    input_schema = {
        "type": "object",
        "properties": {"say": {"type": "string"}, "wrong": {"type": "boolean"}},
        "required": ["say"],
    }
    output_schema = {"type": "object", "properties": {"said": {"type": "string"}}, "required": ["said"]}

    async def ask(self, context: AskContext, arguments: dict[str, Any]) -> Any:
        if arguments.get("wrong"):
            return {"said": 42}
        return {"said": arguments["say"]}


# -- Agent ------------------------------------------------------------------------------------


def test_keywords_override_class_attributes_and_unknown_ones_land_in_config():
    class Greeter(Agent):
        name = "greeter"
        description = "Greets."
        rules = ["Be brief."]
        greeting = "Hello"

    default = Greeter()
    assert (default.name, default.identity, default.description, default.rules) == (
        "greeter",
        "greeter",
        "Greets.",
        ["Be brief."],
    )
    custom = Greeter(name="hi", title="Hi bot", greeting="Hey", mood="cheerful", metadata={"a": 1})
    assert (custom.name, custom.title, custom.greeting, custom.metadata) == ("hi", "Hi bot", "Hey", {"a": 1})
    assert custom.config == {"mood": "cheerful"}
    assert Greeter.greeting == "Hello" and default.config == {}


def test_an_instance_changing_its_rules_or_metadata_leaves_the_class_alone():
    class Noted(Agent):
        rules = ["one"]
        metadata = {"tags": ["x"]}

    agent = Noted()
    agent.rules.append("two")
    agent.metadata["tags"].append("y")
    assert Noted.rules == ["one"] and Noted.metadata == {"tags": ["x"]}


def test_a_config_key_naming_a_method_does_not_replace_the_method():
    agent = Agent(chat_context="nope")
    assert isinstance(agent.chat_context(), ChatContext)
    assert agent.config == {"chat_context": "nope"}


def test_the_chat_context_starts_with_a_system_message_from_description_and_rules():
    agent = Agent(name="helper", description="Helps with maths.", rules=["Show your work.", "Be exact."])
    chat = agent.chat_context()
    assert chat.messages == [
        {"role": "system", "content": "Helps with maths.\n\nRules:\n- Show your work.\n- Be exact."}
    ]
    assert chat.system == chat.messages[0]["content"]
    chat.append("user", "2+2?")
    chat.append("assistant", "4")
    assert [m["role"] for m in chat] == ["system", "user", "assistant"] and len(chat) == 3
    assert agent.chat_context().messages == chat.messages[:1]  # each call starts afresh
    copy = chat.copy()
    copy.append("user", "and 3+3?")
    assert len(chat) == 3 and len(copy) == 4
    with pytest.raises(ValueError, match="unknown chat role"):
        chat.append("robot", "beep")


def test_a_subclass_can_override_the_system_prompt():
    class Pirate(Agent):
        description = "Answers questions."

        def system_prompt(self) -> str:
            return super().system_prompt() + "\n\nTalk like a pirate."

    assert Pirate().chat_context().system == "Answers questions.\n\nTalk like a pirate."


def test_an_agents_attributes_describe_it():
    agent = Agent(name="helper", title="Helper", description="Helps.", metadata={"model": "x"})
    assert agent.agent_attributes() == {
        "agent": {
            "name": "helper",
            "title": "Helper",
            "description": "Helps.",
            "kind": "agent",
            "metadata": {"model": "x"},
        }
    }


def test_a_task_runners_attributes_carry_its_json_schemas():
    attributes = Counter().agent_attributes()["agent"]
    assert attributes["kind"] == "task_runner"
    assert attributes["input_schema"] == Question.model_json_schema()
    assert attributes["output_schema"] == Answer.model_json_schema(mode="serialization")
    assert attributes["metadata"] == {"version": 1}
    assert Echo().agent_attributes()["agent"]["output_schema"]["required"] == ["said"]


# -- TaskRunner validation ---------------------------------------------------------------------


def test_a_task_runner_needs_a_valid_name_and_valid_schemas():
    class Nameless(TaskRunner):
        pass

    with pytest.raises(ValueError, match="needs a name"):
        Nameless()
    with pytest.raises(ValueError, match="invalid agent name"):
        Nameless(name="no spaces")
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        Nameless(name="bad", output_schema={"type": "nonsense"})
    with pytest.raises(TypeError, match="JSON Schema dict or a pydantic BaseModel"):
        Nameless(name="bad", input_schema=str)


async def test_arguments_are_validated_before_ask_and_models_arrive_as_instances():
    counter = Counter()
    assert await counter.answer({"text": "one two three"}) == {"words": 3}
    assert await counter.answer({"text": "one two three", "limit": 2}) == {"words": 2}
    with pytest.raises(InvalidAskArguments, match="input schema") as caught:
        await counter.answer({"text": 5})
    assert caught.value.errors == [{"path": "/text", "message": "5 is not of type 'string'"}]
    with pytest.raises(InvalidAskArguments, match="'say' is a required property"):
        await Echo().answer({})


async def test_a_wrong_answer_is_an_error_naming_the_output_schema_never_a_silent_pass():
    with pytest.raises(InvalidAnswer, match="the answer does not match the output schema") as caught:
        await Echo().answer({"say": "hi", "wrong": True})
    assert caught.value.errors == [{"path": "/said", "message": "42 is not of type 'string'"}]

    class NotJson(Echo):
        async def ask(self, context: AskContext, arguments: Any) -> Any:
            return {"said": object()}

    with pytest.raises(InvalidAnswer, match="not JSON"):
        await NotJson().answer({"say": "hi"})


async def test_without_an_output_schema_any_json_answer_passes():
    class Free(TaskRunner):
        name = "free"

        async def ask(self, context: AskContext, arguments: Any) -> Any:
            return [1, "two", None]

    assert Free().agent_attributes()["agent"]["output_schema"] is None
    assert await Free().answer({}) == [1, "two", None]


def test_a_task_runner_exposes_a_public_toolkit_named_after_it_with_one_ask_tool():
    counter = Counter(description="Counts words.")
    toolkit = counter.ask_toolkit()
    assert toolkit.to_wire() == {
        "name": "counter",
        "description": "Counts words.",
        "public": True,
        "tools": [
            {
                "name": "ask",
                "description": "Counts words.",
                "input_schema": Question.model_json_schema(),
                "output_schema": Answer.model_json_schema(mode="serialization"),
            }
        ],
    }
    assert [t.name for t in counter.exposed_toolkits()] == ["counter"]


def test_the_ask_tool_refuses_bad_arguments_as_argument_errors_with_paths():
    ask = Echo().ask_toolkit().tools["ask"]
    with pytest.raises(pydantic.ValidationError) as caught:
        ask.signature.bind({"say": ["not", "a", "string"]}, None)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (("say",), "['not', 'a', 'string'] is not of type 'string'")
    ]


# -- SingleRoomAgent lifecycle (on a fake room) -------------------------------------------------


class Notes(SingleRoomAgent):
    name = "notes-agent"
    requires = ["storage"]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[str] = []
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

        @tool
        async def slow(ctx: ToolContext) -> str:
            self.entered.set()
            await self.release.wait()
            return "done"

        @tool
        def double(x: int) -> int:
            return 2 * x

        self.toolkits = [*self.toolkits, Toolkit("notes", [slow, double])]

    async def on_start(self) -> None:
        self.events.append(f"start:{sorted(self.room.hosted)}")

    async def on_stop(self) -> None:
        self.events.append(f"stop:{sorted(self.room.hosted)}")


async def test_start_waits_for_required_toolkits_registers_its_own_and_publishes_attributes():
    room = FakeRoom()
    agent = Notes()
    starting = asyncio.create_task(agent.start(room))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not starting.done() and room.hosted == {}
    room.add_toolkit({"name": "storage", "participant_id": None, "tools": []})
    await asyncio.wait_for(starting, 2)
    assert agent.started and agent.events == ["start:['notes']"]
    assert room.attributes["agent"]["name"] == "notes-agent"
    assert await room.call("notes", "double", {"x": 4}) == 8  # sync handlers still work
    await agent.stop()
    assert agent.events[-1] == "stop:['notes']" and room.hosted == {}
    assert "agent" not in room.attributes and not agent.started


async def test_missing_requirements_are_named_in_the_error():
    agent = Notes(requires=["storage", "weather"])
    room = FakeRoom(toolkits=[{"name": "weather", "participant_id": "p_x", "tools": []}])
    with pytest.raises(MissingToolkits, match="storage") as caught:
        await agent.start(room, requires_timeout=0.1)  # type: ignore[arg-type]
    assert caught.value.missing == ["storage"] and room.hosted == {}
    with pytest.raises(Exception, match="not started"):
        _ = agent.room


async def test_stop_drains_running_calls_and_refuses_new_ones_meanwhile():
    room = FakeRoom(toolkits=[{"name": "storage", "participant_id": None, "tools": []}])
    agent = Notes()
    await agent.start(room)  # type: ignore[arg-type]
    running = asyncio.create_task(room.call("notes", "slow", {}))
    await agent.entered.wait()
    assert agent.in_flight == 1
    stopping = asyncio.create_task(agent.stop(drain=True, timeout=5))
    await asyncio.sleep(0.05)
    assert not stopping.done() and "notes" in room.hosted
    with pytest.raises(AgentStopped, match="stopping"):
        await room.call("notes", "double", {"x": 1})
    agent.release.set()
    assert await running == "done"
    await stopping
    assert room.hosted == {}


async def test_calls_still_running_after_the_drain_timeout_are_answered_with_an_error():
    room = FakeRoom(toolkits=[{"name": "storage", "participant_id": None, "tools": []}])
    agent = Notes()
    await agent.start(room)  # type: ignore[arg-type]
    running = asyncio.create_task(room.call("notes", "slow", {}))
    await agent.entered.wait()
    await agent.stop(drain=True, timeout=0.1)
    with pytest.raises(AgentStopped, match="stopped before this call finished"):
        await running
    assert room.hosted == {}


async def test_a_cancelled_call_is_cancelled_not_turned_into_an_error():
    room = FakeRoom(toolkits=[{"name": "storage", "participant_id": None, "tools": []}])
    agent = Notes()
    await agent.start(room)  # type: ignore[arg-type]
    running = asyncio.create_task(room.call("notes", "slow", {}))
    await agent.entered.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert agent.in_flight == 0
    await agent.stop()


async def test_the_ask_tool_builds_an_ask_context_whose_invoke_acts_for_the_asker():
    seen: list[AskContext] = []

    class Delegate(TaskRunner):
        name = "delegate"

        async def ask(self, context: AskContext, arguments: Any) -> Any:
            seen.append(context)
            return await context.invoke("calc", "add", {"a": 1}, timeout=5)

    room = FakeRoom()
    agent = Delegate()
    await agent.start(room)  # type: ignore[arg-type]
    assert await room.call("delegate", "ask", {}, caller={"id": "p_alice"}) == {"ok": True}
    assert await room.call("delegate", "ask", {}, caller={"id": "p_bot"}, on_behalf_of={"id": "p_bob"}) == {"ok": True}
    assert [i["on_behalf_of_id"] for i in room.invocations] == ["p_alice", "p_bob"]
    assert room.invocations[0]["timeout"] == 5
    assert seen[0].agent is agent and seen[0].asker == {"id": "p_alice"} and seen[0].call_id == "k_1"
    await agent.stop()


async def test_an_unnamed_single_room_agent_takes_its_participants_identity():
    room = FakeRoom(identity="robot")
    agent = SingleRoomAgent()
    await agent.start(room)  # type: ignore[arg-type]
    assert agent.identity == "robot" and room.attributes["agent"]["name"] == "robot"
    await agent.stop()


async def test_after_a_reconnect_the_agent_publishes_its_attributes_again():
    room = FakeRoom()
    agent = Counter()
    await agent.start(room)  # type: ignore[arg-type]
    await room.set_attributes({"agent": None})  # a reconnect: a new participant, without attributes
    await room.emit("connection.restored", {"participant": {}})
    assert room.attributes == agent.agent_attributes()
    await agent.stop()
    await room.emit("connection.restored", {"participant": {}})
    assert room.attributes == {}


async def test_a_failing_on_start_leaves_nothing_registered():
    class Broken(Counter):
        async def on_start(self) -> None:
            raise RuntimeError("no")

    room = FakeRoom()
    agent = Broken()
    with pytest.raises(RuntimeError, match="no"):
        await agent.start(room)  # type: ignore[arg-type]
    assert room.hosted == {} and room.attributes == {} and not agent.started
