"""The fake OpenAI server (tests/support/fake_openai.py) plus `POST /v1/embeddings`.

Each input's vector is `embedding(index, text)` and its usage `embedding_tokens(text)`: subclasses
choose them (3 fixed-ish dimensions by default, a token per 4 characters, at least 1). The fake's
API key is checked as for chat, and a scripted `ErrorReply` answers one embeddings request."""

from __future__ import annotations

from tests.support.fake_openai import ErrorReply, FakeOpenAI, RecordedRequest, _Handler


class _EmbeddingsHandler(_Handler):
    def _handle(self, request: RecordedRequest) -> None:
        if self.path.split("?")[0].rstrip("/") != "/v1/embeddings":
            super()._handle(request)
            return
        fake = self.server.fake
        assert isinstance(fake, FakeOpenAIEmbeddings)
        if fake.api_key is not None and request.headers.get("authorization") != f"Bearer {fake.api_key}":
            self._error(request, ErrorReply(401, "Incorrect API key provided.", code="invalid_api_key"))
            return
        scripted = fake._next_scripted() if fake.pending else None
        if isinstance(scripted, ErrorReply):
            self._error(request, scripted)
            return
        inputs = request.body.get("input") if isinstance(request.body, dict) else None
        inputs = inputs if isinstance(inputs, list) else [inputs]
        tokens = sum(fake.embedding_tokens(str(text)) for text in inputs)
        body = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": fake.embedding(n, str(text))}
                for n, text in enumerate(inputs)
            ],
            "model": request.body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._json(200, body, request=request)


class FakeOpenAIEmbeddings(FakeOpenAI):
    def start(self) -> FakeOpenAIEmbeddings:
        super().start()
        assert self._server is not None
        self._server.RequestHandlerClass = _EmbeddingsHandler
        return self

    def embedding(self, index: int, text: str) -> list[float]:
        return [0.1 * index, 0.2, 0.3]

    def embedding_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)
