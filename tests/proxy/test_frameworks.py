"""Any framework's agent is metered by pointing its OpenAI base URL at the proxy: LangChain's
`ChatOpenAI` (langchain-openai) and PydanticAI's `OpenAIChatModel`, offline against the fake."""

import asyncio

import pytest

from .conftest import wait_for_usage

pytestmark = [pytest.mark.e2e]


def test_langchain_chat_openai_invoke_and_stream(base_url, upstream, agent_token, project, prices):
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(model="acme-chat", base_url=base_url, api_key=agent_token, max_retries=0)
    upstream.reply("Bonjour", usage=(11, 2))
    assert llm.invoke("Say hello in French").content == "Bonjour"
    upstream.reply("Hello there friend", usage=(12, 3))
    assert "".join(str(chunk.content) for chunk in llm.stream("Say hello")) == "Hello there friend"
    first, second = wait_for_usage(2, project=project)
    assert [(r.input_tokens, r.output_tokens, r.agent, r.metadata["stream"]) for r in (first, second)] == [
        (11, 2, "researcher", False),
        (12, 3, "researcher", True),
    ]


def test_pydantic_ai_openai_model_run_and_stream(base_url, upstream, agent_token, project, prices):
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("acme-chat", provider=OpenAIProvider(base_url=base_url, api_key=agent_token))
    agent = Agent(model)
    upstream.reply("forty-two", usage=(20, 5))
    assert agent.run_sync("What is the answer?").output == "forty-two"

    async def streamed() -> str:
        async with agent.run_stream("And again?") as run:
            return "".join([text async for text in run.stream_text(delta=True)])

    upstream.reply("still forty-two", usage=(21, 6))
    assert asyncio.run(streamed()) == "still forty-two"
    first, second = wait_for_usage(2, project=project)
    assert [(r.input_tokens, r.output_tokens, r.metadata["stream"]) for r in (first, second)] == [
        (20, 5, False),
        (21, 6, True),
    ]
    assert second.metadata.get("usage_estimated") is None
