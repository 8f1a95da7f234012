"""The fake embeddings server (tests/support/fake_embeddings.py) for the vector store. Vectors are
a hashed bag of words (64 dimensions), so texts sharing words are near each other; usage counts a
token per word. A scripted `ErrorReply` answers one request."""

import hashlib
import re
from collections.abc import Iterator

import pytest

from tests.support.fake_embeddings import FakeOpenAIEmbeddings

DIMS = 64
WORD = re.compile(r"[a-z0-9]+")


def bag_of_words(text: str) -> list[float]:
    vector = [0.0] * DIMS
    for word in WORD.findall(text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
    return vector


class FakeEmbeddings(FakeOpenAIEmbeddings):
    def embedding(self, index: int, text: str) -> list[float]:
        return bag_of_words(text)

    def embedding_tokens(self, text: str) -> int:
        return len(WORD.findall(text.lower()))


@pytest.fixture
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings(api_key="sk-embed") as fake:
        yield fake
