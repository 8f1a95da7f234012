"""Framework adapters offline, with the real libraries and their own fake models."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import StructuredTool
from meshsite_client import InvalidArguments, NotFound
from meshsite_client.agents import AskContext, InvalidAnswer, InvalidAskArguments
from meshsite_client.integrations import function_task_runner, room_tools
from meshsite_client.integrations.langchain import LangChainTaskRunner, langchain_output, langchain_tools
from meshsite_client.integrations.pydantic_ai import PydanticAITaskRunner, pydantic_ai_tools
from pydantic import BaseModel
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.models.test import TestModel

from .fakes import FakeRoom, calling_model

ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
}

ROOM_TOOLKITS = [
    {"name": "messaging", "participant_id": None, "tools": [{"name": "send", "input_schema": {"type": "object"}}]},
    {
        "name": "calc",
        "description": "Arithmetic",
        "participant_id": "p_calc",
        "participant_identity": "calculator",
        "tools": [
            {"name": "add", "description": "Add two numbers.", "input_schema": ADD_SCHEMA},
            {"name": "neg", "input_schema": {}},
        ],
    },
    {"name": "mine", "participant_id": "p_me", "tools": [{"name": "x", "input_schema": {"type": "object"}}]},
    {
        "name": "ui.panel",
        "public": False,
        "participant_id": "p_tab",
        "tools": [{"name": "show", "input_schema": {"type": "object"}}],
    },
]


# -- plain functions -------------------------------------------------------------------------


class Total(BaseModel):
    total: float
    count: int


async def test_a_function_becomes_a_task_runner_with_schemas_from_its_hints():
    async def summarize(numbers: list[float], scale: float = 1.0) -> Total:
        """Add numbers up.

        Not part of the description."""
        return Total(total=sum(numbers) * scale, count=len(numbers))

    runner = function_task_runner(summarize, name="summer", title="Summer")
    assert (runner.name, runner.title, runner.description, runner.kind) == (
        "summer",
        "Summer",
        "Add numbers up.",
        "task_runner",
    )
    schema = runner.input_json_schema
    assert schema["required"] == ["numbers"] and set(schema["properties"]) == {"numbers", "scale"}
    assert runner.output_json_schema is not None and runner.output_json_schema["required"] == ["total", "count"]
    assert await runner.answer({"numbers": [1, 2, 3], "scale": 2}) == {"total": 12.0, "count": 3}
    with pytest.raises(InvalidAskArguments, match="'numbers' is a required property"):
        await runner.answer({})
    assert runner.ask_toolkit().tools["ask"].input_schema == schema


async def test_sync_functions_run_and_get_the_ask_context_when_they_ask_for_it():
    def whoami(greeting: str, ctx: AskContext) -> str:
        return f"{greeting}, {ctx.asker.get('identity', 'nobody')}"

    runner = function_task_runner(whoami, name="who", description="Says who asked.")
    assert runner.description == "Says who asked."
    assert "ctx" not in runner.input_json_schema["properties"]
    context = AskContext.local(runner)
    context.caller = {"id": "p_a", "identity": "alice"}
    assert await runner.answer({"greeting": "hi"}, context) == "hi, alice"


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
async def test_a_function_returning_the_wrong_type_is_refused():
    def liar() -> int:
        return "many"  # type: ignore[return-value]

    with pytest.raises(InvalidAnswer, match="output schema"):
        await function_task_runner(liar, name="liar").answer({})


# -- room toolkits as plain tools ---------------------------------------------------------------


def test_room_tools_take_other_participants_toolkits_unless_named():
    room = FakeRoom(ROOM_TOOLKITS)
    specs = room_tools(room)  # type: ignore[arg-type]
    assert [(s.name, s.toolkit, s.tool, s.participant_id) for s in specs] == [
        ("calc_add", "calc", "add", "p_calc"),
        ("calc_neg", "calc", "neg", "p_calc"),
        ("ui_panel_show", "ui.panel", "show", "p_tab"),
    ]
    assert specs[0].description == "Add two numbers." and specs[0].input_schema == ADD_SCHEMA
    assert specs[1].input_schema == {"type": "object", "properties": {}}
    named = room_tools(room, ["messaging", "calc"])  # type: ignore[arg-type]
    assert [s.name for s in named] == ["messaging_send", "calc_add", "calc_neg"]
    with pytest.raises(ValueError, match="no toolkit named weather"):
        room_tools(room, ["weather"])  # type: ignore[arg-type]


async def test_room_tools_from_an_ask_context_act_for_the_asker():
    room = FakeRoom(ROOM_TOOLKITS)
    runner = function_task_runner(lambda: None, name="x")
    context = AskContext.local(runner, room)  # type: ignore[arg-type]
    context.caller = {"id": "p_bot"}
    context.on_behalf_of = {"id": "p_alice"}
    context.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    [add] = room_tools(context, ["calc"])[:1]
    await add({"a": 1, "b": 2})
    assert room.invocations == [
        {
            "toolkit": "calc",
            "tool": "add",
            "arguments": {"a": 1, "b": 2},
            "participant_id": "p_calc",
            "on_behalf_of_id": "p_alice",
            "timeout": None,
            "traceparent": context.traceparent,
        }
    ]


# -- LangChain ----------------------------------------------------------------------------------


async def test_a_langchain_runnable_answers_asks():
    runner = LangChainTaskRunner(
        RunnableLambda(lambda args: {"upper": args["text"].upper()}),
        name="shout",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        output_schema={"type": "object", "properties": {"upper": {"type": "string"}}, "required": ["upper"]},
    )
    assert await runner.answer({"text": "hi"}) == {"upper": "HI"}
    with pytest.raises(InvalidAskArguments):
        await runner.answer({"text": 1})


async def test_a_langchain_chat_chain_answers_with_the_message_content():
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "{question}")])
    model = FakeListChatModel(responses=["Forty-two.", "Still forty-two."])
    runner = LangChainTaskRunner(
        prompt | model,
        name="oracle",
        description="Answers questions.",
        input_schema={"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]},
        output_schema={"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"]},
    )
    assert await runner.answer({"question": "The answer?"}) == {"content": "Forty-two."}
    assert await runner.answer({"question": "Again?"}) == {"content": "Still forty-two."}


async def test_a_langchain_answer_that_violates_the_output_schema_is_refused():
    runner = LangChainTaskRunner(
        RunnableLambda(lambda args: {"nope": True}),
        name="broken",
        input_schema={"type": "object"},
        output_schema={"type": "object", "required": ["content"]},
    )
    with pytest.raises(InvalidAnswer, match="'content' is a required property"):
        await runner.answer({})


def test_langchain_output_conversions():
    assert langchain_output(AIMessage(content="hi")) == {"content": "hi"}
    assert langchain_output({"a": 1}) == {"a": 1}
    assert langchain_output(Total(total=1, count=1)) == {"total": 1.0, "count": 1}
    assert langchain_output("plain") == "plain"


async def test_room_toolkits_become_langchain_structured_tools_that_invoke_the_room():
    room = FakeRoom(ROOM_TOOLKITS)
    room.answers[("calc", "add")] = 3
    tools = langchain_tools(room, ["calc"])  # type: ignore[arg-type]
    assert all(isinstance(t, StructuredTool) for t in tools)
    add = tools[0]
    assert add.name == "calc_add" and add.description == "Add two numbers."
    assert add.args == ADD_SCHEMA["properties"]
    assert await add.ainvoke({"a": 1, "b": 2}) == 3
    assert room.invocations[0]["arguments"] == {"a": 1, "b": 2}
    assert room.invocations[0]["participant_id"] == "p_calc"
    # As a model's tool call, the answer comes back as a ToolMessage.
    message = await add.ainvoke({"type": "tool_call", "id": "t1", "name": "calc_add", "args": {"a": 1, "b": 2}})
    assert isinstance(message, ToolMessage) and message.content == "3" and message.tool_call_id == "t1"


async def test_langchain_tool_errors_raise_or_become_text_for_the_model():
    room = FakeRoom(ROOM_TOOLKITS)
    room.answers[("calc", "add")] = NotFound(-32002, "no such toolkit", {"type": "not_found"})
    [add, _neg] = langchain_tools(room, ["calc"])  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await add.ainvoke({"a": 1, "b": 2})
    [add, _neg] = langchain_tools(room, ["calc"], handle_tool_error=True)  # type: ignore[arg-type]
    assert "no such toolkit" in await add.ainvoke({"a": 1, "b": 2})


# -- PydanticAI ---------------------------------------------------------------------------------


async def test_a_pydantic_ai_agent_answers_prompts_with_its_output():
    class City(BaseModel):
        name: str
        population: int

    agent = PydanticAgent(TestModel(custom_output_args={"name": "Lisbon", "population": 545000}), output_type=City)
    runner = PydanticAITaskRunner(agent, name="cities", description="Facts about cities.")
    assert runner.input_json_schema["required"] == ["prompt"]
    assert runner.output_json_schema == {
        "type": "object",
        "properties": {"output": City.model_json_schema(mode="serialization")},
        "required": ["output"],
    }
    assert await runner.answer({"prompt": "Tell me about Lisbon"}) == {
        "output": {"name": "Lisbon", "population": 545000}
    }
    with pytest.raises(InvalidAskArguments):
        await runner.answer({"question": "wrong key"})


async def test_a_text_pydantic_ai_agent_answers_with_a_string():
    runner = PydanticAITaskRunner(PydanticAgent(TestModel(custom_output_text="Hi!")), name="greeter")
    assert runner.output_json_schema is not None
    assert runner.output_json_schema["properties"]["output"] == {"type": "string"}
    assert await runner.answer({"prompt": "hello"}) == {"output": "Hi!"}


async def test_room_toolkits_become_pydantic_ai_tools_that_invoke_the_room():
    room = FakeRoom(ROOM_TOOLKITS)
    room.answers[("calc", "add")] = {"sum": 3}
    tools = pydantic_ai_tools(room, ["calc"])  # type: ignore[arg-type]
    assert [t.name for t in tools] == ["calc_add", "calc_neg"]
    assert tools[0].function_schema.json_schema == ADD_SCHEMA
    agent = PydanticAgent(calling_model("calc_add", {"a": 1, "b": 2}), tools=tools)
    result = await agent.run("what is 1+2?")
    assert json.loads(result.output) == {"sum": 3}
    assert room.invocations[0]["arguments"] == {"a": 1, "b": 2}


async def test_arguments_the_room_refuses_make_the_pydantic_ai_model_retry():
    room = FakeRoom(ROOM_TOOLKITS)
    room.answers[("calc", "add")] = InvalidArguments(
        -32003, "arguments do not match the input schema", {"type": "invalid_arguments"}
    )
    agent = PydanticAgent(calling_model("calc_add", {"a": "one"}), tools=pydantic_ai_tools(room, ["calc"]))  # type: ignore[arg-type]
    result = await agent.run("what is one+2?")
    assert result.output.startswith("retried: ") and "input schema" in result.output


async def test_other_room_errors_are_reported_to_the_pydantic_ai_model_as_failed_calls():
    room = FakeRoom(ROOM_TOOLKITS)
    room.answers[("calc", "add")] = NotFound(-32002, "the host left", {"type": "not_found"})
    agent = PydanticAgent(calling_model("calc_add", {"a": 1, "b": 2}), tools=pydantic_ai_tools(room, ["calc"]))  # type: ignore[arg-type]
    result = await agent.run("what is 1+2?")
    assert result.output.startswith("failed: ") and "the host left" in result.output


async def test_a_pydantic_ai_runner_can_hand_room_toolkits_to_its_agent_for_the_asker():
    room = FakeRoom(ROOM_TOOLKITS)
    room.answers[("calc", "add")] = 3
    agent = PydanticAgent(calling_model("calc_add", {"a": 1, "b": 2}))
    runner = PydanticAITaskRunner(agent, name="mathbot", room_tools=["calc"])
    context = AskContext.local(runner, room)  # type: ignore[arg-type]
    context.caller = {"id": "p_alice", "identity": "alice"}
    assert await runner.answer({"prompt": "1+2?"}, context) == {"output": "3"}
    assert room.invocations[0]["on_behalf_of_id"] == "p_alice"
