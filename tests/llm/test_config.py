"""`LLMConfig`: per-service settings, resolved against the environment."""

import pytest
from meshsite_client.llm import LLMConfig, NoLLMConfigured


def test_unset_values_come_from_the_environment() -> None:
    config = LLMConfig(model="gpt-4o-mini")

    resolved = config.resolve({"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://localhost:11434/v1"})

    assert resolved.api_key == "sk-env"
    assert resolved.base_url == "http://localhost:11434/v1"
    assert config.api_key is None, "the config itself is unchanged"


def test_the_service_config_wins_over_the_environment() -> None:
    config = LLMConfig(model="m", api_key="sk-service", base_url="http://vllm:8000/v1")

    resolved = config.resolve({"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://other/v1"})

    assert (resolved.api_key, resolved.base_url) == ("sk-service", "http://vllm:8000/v1")


@pytest.mark.parametrize("environ", [{}, {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}])
def test_nothing_configured_says_what_to_set(environ: dict[str, str]) -> None:
    with pytest.raises(NoLLMConfigured) as caught:
        LLMConfig(model="gpt-4o-mini", service="assistant").resolve(environ)

    message = str(caught.value)
    for hint in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "api_key", "base_url", "'assistant'"):
        assert hint in message
    assert caught.value.service == "assistant"


def test_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert not LLMConfig(model="m").is_configured
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8080/v1")
    assert LLMConfig(model="m").is_configured


def test_from_mapping_refuses_unknown_keys() -> None:
    config = LLMConfig.from_mapping({"model": "gpt-4o", "context_window": 128_000, "options": {"temperature": 0}})
    assert config.context_window == 128_000

    with pytest.raises(ValueError, match="contxt_window"):
        LLMConfig.from_mapping({"model": "gpt-4o", "contxt_window": 1})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": ""},
        {"model": "m", "max_retries": -1},
        {"model": "m", "timeout": 0},
        {"model": "m", "context_window": 0},
    ],
)
def test_invalid_values_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LLMConfig(**kwargs)


def test_the_key_never_shows_in_repr() -> None:
    assert "sk-secret" not in repr(LLMConfig(model="m", api_key="sk-secret"))
