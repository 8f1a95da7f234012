"""Fixtures for the LLM layer's tests: the fake OpenAI server and a config pointing at it."""

from collections.abc import AsyncIterator

import pytest
from meshsite_client.llm import LLMConfig, close_clients
from meshsite_client.llm.tokens import clear_token_counter_cache

from tests.support.fake_openai import FakeOpenAI, fake_openai

__all__ = ["fake_openai"]


@pytest.fixture
def config(fake_openai: FakeOpenAI) -> LLMConfig:
    """Fast retries (10 ms backoff) so retry tests stay well under a second."""
    return LLMConfig(
        model="gpt-4o-mini",
        api_key="sk-test",
        base_url=fake_openai.base_url,
        max_retries=2,
        timeout=5.0,
        initial_backoff=0.01,
        max_backoff=0.05,
    )


@pytest.fixture(autouse=True)
async def _close_llm_clients() -> AsyncIterator[None]:
    yield
    await close_clients()


@pytest.fixture(autouse=True)
def _fresh_token_counters() -> None:
    clear_token_counter_cache()
