"""The LLM layer: streamed Chat Completions on the official `openai` client, for any
OpenAI-compatible server (needs the `llm` extra: `pip install 'meshsite-client[llm]'`).

- `LLMConfig`: model, API key, base URL, retries, timeout, context window, per service.
- `stream_chat(config, messages, tools=None, tool_choice=None)`: an async iterator of `LLMEvent`s
  (`TextDelta`, `ToolCallStarted`, `ToolCallArgumentsDelta`, `ToolCallEnded`, `Usage`,
  `Finished`, and `Retrying` before any output when a 429/5xx is retried).
- `ChatResult`: folds the events into the assistant message to append to the history.
- `trim_to_window(messages, context_window, count_tokens)`: drops the oldest turns so the prompt fits.
- `token_counter(model)`: counts with tiktoken when the model's encoding file is on the machine,
  else approximately (4 characters a token), never downloading anything.
- Errors: `LLMError` and its subclasses (see `errors`), `NoLLMConfigured` among them.
"""

from .config import LLMConfig
from .errors import (
    ContextWindowExceeded,
    LLMAuthError,
    LLMBadRequest,
    LLMConnectionError,
    LLMError,
    LLMRateLimited,
    LLMServerError,
    LLMStatusError,
    LLMStreamError,
    NoLLMConfigured,
)
from .events import (
    ChatResult,
    Finished,
    LLMEvent,
    Retrying,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallEnded,
    ToolCallStarted,
    Usage,
)
from .stream import close_clients, stream_chat, warm_up
from .tokens import MessageTokenCounter, TokenCounter, approximate_tokens, token_counter
from .trim import TrimResult, trim_to_window

__all__ = [
    "ChatResult",
    "ContextWindowExceeded",
    "Finished",
    "LLMAuthError",
    "LLMBadRequest",
    "LLMConfig",
    "LLMConnectionError",
    "LLMError",
    "LLMEvent",
    "LLMRateLimited",
    "LLMServerError",
    "LLMStatusError",
    "LLMStreamError",
    "MessageTokenCounter",
    "NoLLMConfigured",
    "Retrying",
    "TextDelta",
    "TokenCounter",
    "ToolCallArgumentsDelta",
    "ToolCallEnded",
    "ToolCallStarted",
    "TrimResult",
    "Usage",
    "approximate_tokens",
    "close_clients",
    "stream_chat",
    "token_counter",
    "trim_to_window",
    "warm_up",
]
