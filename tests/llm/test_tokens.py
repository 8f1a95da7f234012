"""Token counting: tiktoken only from files already on the machine, else the logged approximation."""

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
import tiktoken
import tiktoken.load
import tiktoken.registry
from meshsite_client.llm import approximate_tokens, token_counter
from meshsite_client.llm.tokens import NON_TEXT_PART_TOKENS, PER_MESSAGE_TOKENS, REPLY_PRIMING_TOKENS


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """An empty tiktoken cache, and tiktoken's downloader replaced by one that records and fails."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    attempts: list[str] = []

    def refuse(url: str, *args: Any, **kwargs: Any) -> None:
        attempts.append(url)
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(requests, "get", refuse)
    return attempts


@pytest.fixture
def tiny_encodings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two extra tiktoken encodings: `tiny_local` from a file on disk, `tiny_remote` from a URL."""
    ranks = [bytes([b]) for b in range(256)] + [b"he"]
    local = tmp_path / "tiny.tiktoken"
    local.write_text("".join(f"{base64.b64encode(token).decode()} {rank}\n" for rank, token in enumerate(ranks)))

    def constructor(path: str, name: str) -> Any:
        def build() -> dict[str, Any]:
            return {
                "name": name,
                "pat_str": r"\S+|\s+",
                "mergeable_ranks": tiktoken.load.load_tiktoken_bpe(path),
                "special_tokens": {},
            }

        return build

    tiktoken.list_encoding_names()  # loads the registry's constructors
    constructors = tiktoken.registry.ENCODING_CONSTRUCTORS
    assert constructors is not None
    monkeypatch.setitem(constructors, "tiny_local", constructor(str(local), "tiny_local"))
    monkeypatch.setitem(
        constructors, "tiny_remote", constructor("https://example.invalid/tiny.tiktoken", "tiny_remote")
    )


def test_a_known_model_without_its_encoding_file_falls_back_and_says_so_once(
    no_network: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshsite_client.llm")

    counter = token_counter("gpt-4o-mini")
    again = token_counter("gpt-4o-mini")

    assert counter is again
    assert counter.method == "approximate"
    assert "o200k_base encoding file is not on this machine" in (counter.fallback_reason or "")
    assert counter.count_text("abcdefghi") == 3 == approximate_tokens("abcdefghi")
    warnings = [r for r in caplog.records if "approximately" in r.getMessage()]
    assert len(warnings) == 1, "logged once per model"
    assert "gpt-4o-mini" in warnings[0].getMessage()
    assert no_network == [], "never downloads"


def test_an_unknown_model_falls_back(no_network: list[str]) -> None:
    counter = token_counter("llama3.2:3b")

    assert counter.method == "approximate"
    assert "does not know the encoding" in (counter.fallback_reason or "")


def test_a_provider_prefix_is_looked_through(no_network: list[str]) -> None:
    counter = token_counter("openai/gpt-4o")

    assert "o200k_base" in (counter.fallback_reason or ""), "resolved to gpt-4o's encoding"


def test_tiktoken_counts_when_the_encoding_file_is_local(no_network: list[str], tiny_encodings: None) -> None:
    counter = token_counter("my-model", encoding="tiny_local")

    assert counter.method == "tiktoken:tiny_local"
    assert counter.count_text("hello") == 4, "he + l + l + o: real BPE, not characters / 4"
    assert no_network == []


def test_an_encoding_that_would_need_a_download_falls_back_without_one(
    no_network: list[str], tiny_encodings: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshsite_client.llm")

    counter = token_counter("my-model", encoding="tiny_remote")

    assert counter.method == "approximate"
    assert "https://example.invalid/tiny.tiktoken" in (counter.fallback_reason or "")
    assert no_network == []
    assert tiktoken.load.read_file.__name__ == "read_file", "tiktoken's reader is restored"
    assert any("tiny_remote" in r.getMessage() for r in caplog.records)


def test_message_counting_covers_text_tool_calls_and_other_parts(no_network: list[str]) -> None:
    counter = token_counter("some-local-model")
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "abcd", "arguments": "12345678"}}],
    }
    picture = {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}},
        ],
    }

    assert counter({"role": "user", "content": "abcdefgh"}) == PER_MESSAGE_TOKENS + 2
    assert counter(call) == PER_MESSAGE_TOKENS + 1 + 2
    assert counter(picture) == PER_MESSAGE_TOKENS + 4 + NON_TEXT_PART_TOKENS
    messages = [{"role": "user", "content": "abcd"}] * 3
    assert counter.count_messages(messages) == 3 * (PER_MESSAGE_TOKENS + 1) + REPLY_PRIMING_TOKENS
    assert counter.count_tools([{"type": "function", "function": {"name": "x"}}]) > 0
