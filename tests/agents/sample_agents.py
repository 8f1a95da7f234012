"""Agents the agent host runs in tests (imported by class path in the host process)."""

import asyncio
from typing import Any

from meshsite_client.agents import AskContext, TaskRunner

TEXT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


class Flaky(TaskRunner):
    """Raises on 'boom', answers otherwise."""

    name = "flaky"
    description = "Echoes, except when told to explode."
    input_schema = TEXT
    output_schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        if arguments["text"] == "boom":
            raise RuntimeError("exploded on purpose")
        return {"echo": arguments["text"]}


class Slow(TaskRunner):
    name = "slow"
    input_schema = {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]}
    output_schema = {"type": "object", "properties": {"slept": {"type": "number"}}, "required": ["slept"]}

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        await asyncio.sleep(arguments["seconds"])
        return {"slept": arguments["seconds"]}


class Broken(TaskRunner):
    """Fails while starting: its dispatch fails, the host and other agents carry on."""

    name = "broken"
    input_schema = TEXT

    async def on_start(self) -> None:
        raise RuntimeError("cannot start: missing credentials")

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        return {}


class Delegating(TaskRunner):
    """Answers by calling another participant's tool on behalf of whoever asked."""

    name = "delegating"
    input_schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        return {"sum": await context.invoke("calc", "add", arguments)}


class Reporting(TaskRunner):
    """Reports its stages as progress before it answers."""

    name = "reporting"
    title = "Progress reporter"
    input_schema = TEXT

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        for stage in ("reading", "counting"):
            await context.progress({"stage": stage})
        return {"words": len(arguments["text"].split())}
