"""Agents on top of the client: `Agent`, `SingleRoomAgent`, `TaskRunner`, `ChatBot` (see docs/agents.md)."""

from .base import Agent
from .chat import ChatContext
from .errors import AgentError, AgentStopped, InvalidAnswer, InvalidAskArguments, MissingToolkits
from .run import run_agent
from .single_room import SingleRoomAgent
from .task_runner import AskContext, TaskRunner, json_schema_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .chatbot import ChatBot


def __getattr__(name: str) -> object:
    # ChatBot needs the `llm` extra (openai); importing it only when asked keeps the rest light.
    if name == "ChatBot":
        from .chatbot import ChatBot

        return ChatBot
    raise AttributeError(name)


__all__ = [
    "Agent",
    "AgentError",
    "AgentStopped",
    "AskContext",
    "ChatBot",
    "ChatContext",
    "InvalidAnswer",
    "InvalidAskArguments",
    "MissingToolkits",
    "SingleRoomAgent",
    "TaskRunner",
    "json_schema_of",
    "run_agent",
]
