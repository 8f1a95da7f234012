"""Errors of the LLM layer.

Every error carries the upstream's own words: `message` (the `error.message` of the upstream's
body when it sent one), `status` (the HTTP status, `None` when there was no response), and the
upstream's `type` and `code` when given. `retryable` tells whether the same request may succeed
later (the layer has already retried it `config.max_retries` times when this is raised).

    LLMError
    ├── NoLLMConfigured          no API key and no base URL: nothing to call
    ├── LLMStatusError           the upstream answered 4xx/5xx before streaming
    │   ├── LLMBadRequest        400, 404, 409, 422 … (the request itself is wrong)
    │   │   └── ContextWindowExceeded   also raised by `trim_to_window` when even the minimum does not fit
    │   ├── LLMAuthError         401, 403
    │   ├── LLMRateLimited       429, after the retries
    │   └── LLMServerError       5xx, after the retries
    ├── LLMConnectionError       could not connect, or timed out, after the retries
    └── LLMStreamError           the stream broke after output had begun, or ended unfinished
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import MeshError


class LLMError(MeshError):
    """Base class of the LLM layer's errors."""

    retryable_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.retryable = self.retryable_default if retryable is None else retryable
        self.retry_after = retry_after
        """Seconds the upstream asked to wait (`Retry-After`), when it did."""

    def __str__(self) -> str:
        if self.status is not None:
            return f"{self.message} (HTTP {self.status})"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"


class NoLLMConfigured(LLMError):
    """Neither an API key nor a base URL is available, so there is no model to call."""

    def __init__(self, message: str | None = None, *, service: str | None = None) -> None:
        where = f"the service {service!r}'s config" if service else "the service's config"
        super().__init__(
            message
            or (
                "No language model is configured. Set OPENAI_API_KEY (for OpenAI), or OPENAI_BASE_URL "
                "(for any OpenAI-compatible server such as vLLM, Ollama or llama.cpp, e.g. "
                "http://localhost:11434/v1), or set `api_key` / `base_url` in "
                f"{where}, then start the agent again."
            )
        )
        self.service = service


class LLMStatusError(LLMError):
    """The upstream answered with an HTTP error status before any output."""


class LLMBadRequest(LLMStatusError):
    """The request was refused as it is (400, 404 unknown model, 422 …): retrying will not help."""


class ContextWindowExceeded(LLMBadRequest):
    """The prompt does not fit the model's context window.

    Raised by the upstream (400 `context_length_exceeded`), or by `trim_to_window` when even the
    messages it never drops (system messages and the newest turn's request) do not fit.
    """


class LLMAuthError(LLMStatusError):
    """401/403: the API key is missing, wrong, or not allowed to use this model."""


class LLMRateLimited(LLMStatusError):
    """429, still after the retries: the upstream's rate limit or quota."""

    retryable_default = True


class LLMServerError(LLMStatusError):
    """5xx, still after the retries."""

    retryable_default = True


class LLMConnectionError(LLMError):
    """The upstream could not be reached, or did not answer in time, after the retries."""

    retryable_default = True


class LLMStreamError(LLMError):
    """The response stream broke after output had begun (so it was not retried), carried an error
    event, or ended without the model finishing. The turn's output so far is incomplete."""

    retryable_default = True
