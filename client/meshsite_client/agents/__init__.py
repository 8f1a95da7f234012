"""Agents on top of the client: `Agent`, `SingleRoomAgent`, `TaskRunner` (see docs/agents.md)."""

from .base import Agent
from .chat import ChatContext
from .errors import AgentError, AgentStopped, InvalidAnswer, InvalidAskArguments, MissingToolkits
from .run import run_agent
from .single_room import SingleRoomAgent
from .task_runner import AskContext, TaskRunner, json_schema_of

__all__ = [
    "Agent",
    "AgentError",
    "AgentStopped",
    "AskContext",
    "ChatContext",
    "InvalidAnswer",
    "InvalidAskArguments",
    "MissingToolkits",
    "SingleRoomAgent",
    "TaskRunner",
    "json_schema_of",
    "run_agent",
]
