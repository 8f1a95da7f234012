"""The demo services of the embedded default: a TaskRunner a newcomer can call and ask at once,
the `assistant` ChatBot that answers in the lobby's threads, and the `word-stats` Worker that
processes the lobby's `jobs` queue in the background."""

import os
from typing import Any

from meshsite_client.agents import AskContext, TaskRunner, Worker, WorkerMessage
from meshsite_client.agents.chatbot import ChatBot


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


class Assistant(ChatBot):
    """Answers in the lobby's threads with any OpenAI-compatible model: set OPENAI_API_KEY (or
    OPENAI_BASE_URL for a local server, and OPENAI_MODEL) for the agent host. Without them it
    says in the thread what to set."""

    name = "assistant"
    title = "Assistant"
    description = "A helpful assistant for the people in this room. It can use the room's public tools."
    rules = ["Answer briefly and plainly.", "Use a tool when it helps; say which one you used."]
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    tool_toolkits = ["*"]


class WordStats(Worker):
    """Counts the words of each text sent to the lobby's `jobs` queue and announces the result in
    the room (`messaging.broadcast`, type `word-stats`)."""

    name = "word-stats"
    title = "Word stats"
    description = "Background worker: counts the words of texts sent to the `jobs` queue."
    queue = "jobs"

    async def process_message(self, message: WorkerMessage) -> dict[str, Any]:
        text = message.prompt()
        result = {"message_id": message.id, "words": len(text.split()), "characters": len(text)}
        await self.room.broadcast("word-stats", result)
        return result
