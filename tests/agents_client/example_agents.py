"""Agents the command-line test runs with `python -m meshsite_client.agents run module:Class`."""

from __future__ import annotations

from typing import Any

from meshsite_client.agents import AskContext, TaskRunner


class Shouter(TaskRunner):
    name = "shouter"
    description = "Repeats a text in capitals."
    suffix = "!"
    input_schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    output_schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    async def ask(self, context: AskContext, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"text": arguments["text"].upper() + self.suffix}
