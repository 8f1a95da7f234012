"""Other agent frameworks in Meshsite rooms: their agents as TaskRunners, room toolkits as their tools.

`function_task_runner` needs nothing more. The LangChain and PydanticAI adapters import their
framework on first use (`pip install 'meshsite-client[langchain]'` / `'[pydantic-ai]'`):

```python
from meshsite_client.integrations.langchain import LangChainTaskRunner, langchain_tools
from meshsite_client.integrations.pydantic_ai import PydanticAITaskRunner, pydantic_ai_tools
```
"""

from __future__ import annotations

import importlib
from typing import Any

from .functions import FunctionTaskRunner, function_task_runner
from .room_tools import RoomTool, room_tools

_LAZY = {
    "LangChainTaskRunner": "langchain",
    "langchain_tools": "langchain",
    "langchain_output": "langchain",
    "PydanticAITaskRunner": "pydantic_ai",
    "pydantic_ai_tools": "pydantic_ai",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "FunctionTaskRunner",
    "LangChainTaskRunner",
    "PydanticAITaskRunner",
    "RoomTool",
    "function_task_runner",
    "langchain_output",
    "langchain_tools",
    "pydantic_ai_tools",
    "room_tools",
]
