"""The demo service of the embedded default: a TaskRunner a newcomer can call and ask at once."""

from typing import Any

from meshsite_client.agents import AskContext, TaskRunner


class WordCounter(TaskRunner):
    name = "word-counter"
    title = "Word counter"
    description = "Counts the words and characters of a text."
    input_schema = {
        "type": "object",
        "properties": {
            "text": {
                "type": "string",
                "description": "The text to count.",
                "examples": ["The quick brown fox jumps over the lazy dog"],
            }
        },
        "required": ["text"],
        "additionalProperties": False,
        "examples": [{"text": "The quick brown fox jumps over the lazy dog"}],
    }
    output_schema = {
        "type": "object",
        "properties": {"words": {"type": "integer"}, "characters": {"type": "integer"}},
        "required": ["words", "characters"],
        "additionalProperties": False,
    }

    async def ask(self, context: AskContext, arguments: Any) -> dict[str, int]:
        text = arguments["text"]
        return {"words": len(text.split()), "characters": len(text)}
