"""Counting a prompt's tokens, offline.

`token_counter(model)` counts with `tiktoken` when two things hold: tiktoken knows the model's
encoding (`gpt-4o` → `o200k_base`, …), and that encoding's file is already on this machine.
tiktoken would otherwise download the file on first use; this module never lets it (a chat turn
must not wait on, or fail for, a download). Put the files in place ahead of time instead, e.g. in
an image build step with network access:

    TIKTOKEN_CACHE_DIR=/opt/tiktoken python -c "import tiktoken; tiktoken.get_encoding('o200k_base')"

and run the agents with the same `TIKTOKEN_CACHE_DIR`.

Otherwise (unknown model, e.g. a local Llama; encoding file absent; tiktoken not installed) it
falls back to an approximation, `APPROX_CHARS_PER_TOKEN` (4) characters a token, rounded up,
and logs that once per model at WARNING on the `meshsite_client.llm` logger. The approximation is
close for English prose and undercounts code and non-Latin scripts, so keep `reserve_tokens` in
the config generous when it is in use.

Each message also costs `PER_MESSAGE_TOKENS` (role and separators), and each non-text content
part (an image, audio) a flat `NON_TEXT_PART_TOKENS`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiktoken import Encoding

log = logging.getLogger("meshsite_client.llm")

APPROX_CHARS_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 3
REPLY_PRIMING_TOKENS = 3
NON_TEXT_PART_TOKENS = 85

MessageTokenCounter = Callable[[Mapping[str, Any]], int]
"""Counts one chat message's tokens (what `trim_to_window` takes)."""


class EncodingNotLocal(Exception):
    """tiktoken wanted to download an encoding file: refused."""


def approximate_tokens(text: str) -> int:
    """The documented fallback: ceil(characters / 4)."""
    return math.ceil(len(text) / APPROX_CHARS_PER_TOKEN)


class TokenCounter:
    """Counts tokens for one model. Call it with one message; `method` says how it counts:
    `"tiktoken:<encoding>"` or `"approximate"` (with the reason in `fallback_reason`)."""

    def __init__(self, model: str, encoding: Encoding | None, fallback_reason: str | None = None) -> None:
        self.model = model
        self.encoding = encoding
        self.fallback_reason = fallback_reason if encoding is None else None

    @property
    def method(self) -> str:
        return f"tiktoken:{self.encoding.name}" if self.encoding is not None else "approximate"

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        if self.encoding is not None:
            return len(self.encoding.encode(text, disallowed_special=()))
        return approximate_tokens(text)

    def __call__(self, message: Mapping[str, Any]) -> int:
        texts, other_parts = _message_texts(message)
        return PER_MESSAGE_TOKENS + sum(self.count_text(t) for t in texts) + NON_TEXT_PART_TOKENS * other_parts

    def count_messages(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """The whole prompt: every message plus the reply's priming."""
        return sum(self(m) for m in messages) + REPLY_PRIMING_TOKENS

    def count_tools(self, tools: Sequence[Mapping[str, Any]] | None) -> int:
        """Tool definitions, counted as their JSON text (the upstream's own rendering differs a little)."""
        if not tools:
            return 0
        return self.count_text(json.dumps(list(tools), separators=(",", ":")))

    def __repr__(self) -> str:
        return f"<TokenCounter {self.model!r} {self.method}>"


def token_counter(model: str, *, encoding: str | None = None) -> TokenCounter:
    """A counter for `model` (or for the tiktoken `encoding` named explicitly).

    Loading an encoding file takes a moment (a few hundred ms for o200k_base) the first time per
    process: make the counter when the agent starts, not inside a turn. Never touches the network.
    """
    key = f"{model}|{encoding or ''}"
    with _cache_lock:
        cached = _counters.get(key)
    if cached is not None:
        return cached
    loaded, reason = _load_encoding(model, encoding)
    counter = TokenCounter(model, loaded, reason)
    with _cache_lock:
        counter = _counters.setdefault(key, counter)
        first = key not in _warned
        _warned.add(key)
    if counter.encoding is None and first:
        log.warning(
            "counting tokens for model %r approximately (%d characters a token): %s",
            model,
            APPROX_CHARS_PER_TOKEN,
            counter.fallback_reason,
        )
    return counter


def clear_token_counter_cache() -> None:
    """Forget the counters made so far (and the "logged once" memory): for tests."""
    with _cache_lock:
        _counters.clear()
        _warned.clear()


_cache_lock = threading.Lock()
_counters: dict[str, TokenCounter] = {}
_warned: set[str] = set()
_download_guard_lock = threading.Lock()


def _load_encoding(model: str, encoding: str | None) -> tuple[Encoding | None, str | None]:
    try:
        import tiktoken
        import tiktoken.model
    except ImportError:
        return None, "tiktoken is not installed (pip install 'meshsite-client[llm]')"
    name = encoding
    if name is None:
        for candidate in dict.fromkeys((model, model.rsplit("/", 1)[-1])):
            try:
                name = tiktoken.model.encoding_name_for_model(candidate)
                break
            except KeyError:
                continue
    if name is None:
        return None, f"tiktoken does not know the encoding of model {model!r}"
    try:
        with _no_downloads():
            return tiktoken.get_encoding(name), None
    except EncodingNotLocal as exc:
        return None, (
            f"the {name} encoding file is not on this machine ({exc}); downloading it at run time is "
            "disabled: pre-fill TIKTOKEN_CACHE_DIR to count exactly"
        )
    except (ValueError, OSError) as exc:
        return None, f"tiktoken could not load the {name} encoding: {exc}"


@contextmanager
def _no_downloads() -> Iterator[None]:
    """While loading an encoding, make tiktoken's file reader refuse URLs (local paths and the
    cache still work). tiktoken reads through `tiktoken.load.read_file`, looked up at call time."""
    import tiktoken.load

    with _download_guard_lock:
        original: Callable[[str], bytes] = tiktoken.load.read_file

        def read_local_only(blobpath: str) -> bytes:
            if "://" in blobpath:
                raise EncodingNotLocal(f"not cached: {blobpath}")
            return original(blobpath)

        # setattr: mypy won't let a module's function be assigned to.
        setattr(tiktoken.load, "read_file", read_local_only)  # noqa: B010
        try:
            yield
        finally:
            setattr(tiktoken.load, "read_file", original)  # noqa: B010


def _message_texts(message: Mapping[str, Any]) -> tuple[list[str], int]:
    """The texts in a message that the model reads, and how many non-text parts it has."""
    texts: list[str] = []
    other = 0
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, str):
                texts.append(part)
            else:
                other += 1
    elif content is not None:
        texts.append(json.dumps(content, default=str))
    name = message.get("name")
    if isinstance(name, str):
        texts.append(name)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            texts.append(str(function.get("name") or ""))
            texts.append(str(function.get("arguments") or ""))
    tool_call_id = message.get("tool_call_id")
    if isinstance(tool_call_id, str):
        texts.append(tool_call_id)
    return texts, other
