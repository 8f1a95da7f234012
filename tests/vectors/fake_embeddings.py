"""`POST /v1/embeddings` on top of the fake OpenAI server (tests/support/fake_openai.py speaks
chat completions only). Vectors are a hashed bag of words (64 dimensions), so texts sharing words
are near each other; usage counts a token per word. A scripted `ErrorReply` answers one request."""

import hashlib
import re
from collections.abc import Iterator

import pytest

from tests.support.fake_openai import ErrorReply, FakeOpenAI, RecordedRequest, _Handler

DIMS = 64
WORD = re.compile(r"[a-z0-9]+")


def bag_of_words(text: str) -> list[float]:
    vector = [0.0] * DIMS
    for word in WORD.findall(text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
    return vector


class _EmbeddingsHandler(_Handler):
    def _handle(self, request: RecordedRequest) -> None:
        if self.path.split("?")[0].rstrip("/") != "/v1/embeddings":
            super()._handle(request)
            return
        fake = self.server.fake
        if fake.api_key is not None and request.headers.get("authorization") != f"Bearer {fake.api_key}":
            self._error(request, ErrorReply(401, "Incorrect API key provided.", code="invalid_api_key"))
            return
        scripted = fake._next_scripted() if fake.pending else None
        if isinstance(scripted, ErrorReply):
            self._error(request, scripted)
            return
        inputs = request.body.get("input") if isinstance(request.body, dict) else None
        inputs = inputs if isinstance(inputs, list) else [inputs]
        tokens = sum(len(WORD.findall(str(text).lower())) for text in inputs)
        body = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": bag_of_words(str(t))} for n, t in enumerate(inputs)
            ],
            "model": request.body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._json(200, body, request=request)


class FakeEmbeddings(FakeOpenAI):
    def start(self) -> "FakeEmbeddings":
        super().start()
        assert self._server is not None
        self._server.RequestHandlerClass = _EmbeddingsHandler
        return self


@pytest.fixture
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings(api_key="sk-embed") as fake:
        yield fake
