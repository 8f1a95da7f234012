"""Agents on top of the client: `Agent`, `SingleRoomAgent`, `TaskRunner`, `ChatBot` (see docs/agents.md)."""

from .base import Agent
from .chat import ChatContext
from .errors import AgentError, AgentStopped, InvalidAnswer, InvalidAskArguments, MissingToolkits
from .run import run_agent
from .single_room import SingleRoomAgent
from .task_runner import AskContext, TaskRunner, json_schema_of
from .worker import Worker, WorkerMessage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .chatbot import ChatBot
    from .mail_worker import MailReply, MailWorker
    from .voicebot import VoiceBot


def __getattr__(name: str) -> object:
    # ChatBot needs the `llm` extra (openai); importing it only when asked keeps the rest light.
    if name == "ChatBot":
        from .chatbot import ChatBot

        return ChatBot
    if name in ("MailWorker", "MailReply"):  # needs the `llm` extra, like ChatBot
        from . import mail_worker

        return getattr(mail_worker, name)
    if name == "VoiceBot":  # needs the `voice` extra (livekit, webrtcvad-wheels)
        from .voicebot import VoiceBot

        return VoiceBot
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
    "MailReply",
    "MailWorker",
    "MissingToolkits",
    "SingleRoomAgent",
    "TaskRunner",
    "VoiceBot",
    "Worker",
    "WorkerMessage",
    "json_schema_of",
    "run_agent",
]
