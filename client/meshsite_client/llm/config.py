"""`LLMConfig`: which model a service talks to, and how.

One config per service (or per agent). Any OpenAI-compatible server works: point `base_url` at
it (vLLM, Ollama, llama.cpp, a proxy). Values left `None` are taken from the environment when
the config is resolved: `OPENAI_API_KEY` and `OPENAI_BASE_URL`. With neither a key nor a base
URL, `resolve()` raises `NoLLMConfigured`, whose message says what to set.

A local server usually needs no key: with a base URL and no key the client sends the placeholder
`LOCAL_API_KEY` (servers that check no key ignore it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import NoLLMConfigured

LOCAL_API_KEY = "no-key"
"""Sent as the bearer token to a `base_url` server when no API key is configured."""

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


@dataclass(frozen=True)
class LLMConfig:
    """How to reach one model.

    `max_retries` retries on 429, 5xx and connection failures, only before any output has been
    streamed, with exponential backoff from `initial_backoff` (doubling, capped at `max_backoff`,
    minus up to 25 % jitter) or the upstream's `Retry-After` when it sends one. A `Retry-After`
    longer than `max_retry_after` is not waited for: the error is raised at once.
    `timeout` (seconds) bounds connecting and each wait for the next chunk, not the whole stream.
    `context_window` (tokens) enables trimming of the prompt; `None` means "unknown, don't trim".
    `reserve_tokens` is kept free in the window for the answer. `include_usage` asks for the
    final usage chunk (turn it off only for a server that rejects `stream_options`).
    `options` are extra request fields sent as they are (`temperature`, `max_completion_tokens`,
    `parallel_tool_calls`, …).
    """

    model: str
    api_key: str | None = None
    base_url: str | None = None
    max_retries: int = 3
    timeout: float = 60.0
    context_window: int | None = None
    reserve_tokens: int = 1024
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    include_usage: bool = True
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    service: str | None = None
    """The service's name, only to make `NoLLMConfigured` say where to configure it."""

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("LLMConfig.model must be a non-empty model name")
        if self.max_retries < 0:
            raise ValueError("LLMConfig.max_retries must be >= 0")
        if self.timeout <= 0:
            raise ValueError("LLMConfig.timeout must be > 0 seconds")
        if self.context_window is not None and self.context_window <= 0:
            raise ValueError("LLMConfig.context_window must be a positive number of tokens, or None")
        if self.reserve_tokens < 0:
            raise ValueError("LLMConfig.reserve_tokens must be >= 0")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("LLMConfig backoff delays must be >= 0")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> LLMConfig:
        """Build a config from a service's config dict; unknown keys are an error (typos show)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown LLM config key(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**dict(data))

    def resolve(self, environ: Mapping[str, str] | None = None) -> LLMConfig:
        """This config with `api_key` / `base_url` filled from the environment where unset.

        Raises `NoLLMConfigured` when there is neither a key nor a base URL. Empty strings count as
        unset.
        """
        env = os.environ if environ is None else environ
        api_key = self.api_key or env.get(API_KEY_ENV) or None
        base_url = self.base_url or env.get(BASE_URL_ENV) or None
        if not api_key and not base_url:
            raise NoLLMConfigured(service=self.service)
        return dataclasses.replace(self, api_key=api_key, base_url=base_url)

    @property
    def is_configured(self) -> bool:
        """Whether `resolve()` would succeed with the current environment."""
        try:
            self.resolve()
        except NoLLMConfigured:
            return False
        return True

    def __repr__(self) -> str:
        # Never print the key: configs end up in logs.
        key = "set" if self.api_key else None
        return (
            f"LLMConfig(model={self.model!r}, base_url={self.base_url!r}, api_key={key!r}, "
            f"max_retries={self.max_retries}, timeout={self.timeout}, context_window={self.context_window})"
        )
