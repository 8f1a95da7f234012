"""The room vector store, the Indexer and embeddings (docs/rag.md)."""

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_str

# "local" (sentence-transformers, `make install-embeddings`), "openai" (any OpenAI-compatible
# embeddings API), or empty: the local model when it is installed, else none (vectors.W001 says
# what to install or set).
MESHSITE_EMBEDDINGS = env_str("MESHSITE_EMBEDDINGS", "").strip().lower()
if MESHSITE_EMBEDDINGS not in ("", "local", "openai"):
    raise ImproperlyConfigured(
        f"MESHSITE_EMBEDDINGS must be 'local' or 'openai' (or empty), got {MESHSITE_EMBEDDINGS!r}"
    )
# Empty: all-MiniLM-L6-v2 (local) or text-embedding-3-small (openai).
MESHSITE_EMBEDDING_MODEL = env_str("MESHSITE_EMBEDDING_MODEL", "")
# OpenAI-compatible server; empty: OPENAI_BASE_URL / OPENAI_API_KEY as the openai client reads them.
MESHSITE_EMBEDDING_BASE_URL = env_str("MESHSITE_EMBEDDING_BASE_URL", "")
MESHSITE_EMBEDDING_API_KEY = env_str("MESHSITE_EMBEDDING_API_KEY", "")
# Ask the server for vectors of this size (text-embedding-3-*); 0: the model's own.
MESHSITE_EMBEDDING_DIMENSIONS = env_int("MESHSITE_EMBEDDING_DIMENSIONS", 0, minimum=0)
MESHSITE_EMBEDDING_BATCH = env_int("MESHSITE_EMBEDDING_BATCH", 64, minimum=1)
MESHSITE_EMBEDDING_TIMEOUT = env_float("MESHSITE_EMBEDDING_TIMEOUT", 60.0, minimum=1)
# The local model in a child process at a lower CPU priority. On by default where background work
# runs inside the web server (the embedded default): indexing then cannot slow the server's
# requests. Off where Celery workers do it (their processes may not have children).
# (Background work is in-process exactly when there is no REDIS_URL: CELERY_TASK_ALWAYS_EAGER.)
MESHSITE_EMBEDDING_PROCESS = env_bool("MESHSITE_EMBEDDING_PROCESS", not env_str("REDIS_URL", ""))
# Chunking: target characters per chunk and characters repeated between neighbours.
MESHSITE_CHUNK_SIZE = env_int("MESHSITE_CHUNK_SIZE", 800, minimum=50)
MESHSITE_CHUNK_OVERLAP = env_int("MESHSITE_CHUNK_OVERLAP", 120, minimum=0)
if MESHSITE_CHUNK_OVERLAP >= MESHSITE_CHUNK_SIZE:
    raise ImproperlyConfigured("MESHSITE_CHUNK_OVERLAP must be smaller than MESHSITE_CHUNK_SIZE")
# pgvector's HNSW search breadth per search, 1-1000 (pgvector's own default is 40). 300 keeps
# recall@5 within 5% of exact search on bench/rag.py's 10k store of look-alike documents, where
# 40 loses 14% (docs/rag.md "Figures"); lower: faster, fewer of the true nearest chunks.
MESHSITE_HNSW_EF_SEARCH = env_int("MESHSITE_HNSW_EF_SEARCH", 300, minimum=1)
if MESHSITE_HNSW_EF_SEARCH > 1000:
    raise ImproperlyConfigured("MESHSITE_HNSW_EF_SEARCH must be at most 1000 (pgvector's limit)")
# The Indexer watches room storage and threads (0: it queues nothing; the store and rag.search stay).
MESHSITE_INDEXER = env_bool("MESHSITE_INDEXER", True)
# A thread's new and changed messages are queued for indexing together, this many seconds after
# the first of them (one task per busy thread per period, not one per message while turns stream).
MESHSITE_INDEX_THREAD_DELAY = env_float("MESHSITE_INDEX_THREAD_DELAY", 2.0, minimum=0.0)
# Files larger than this are not indexed (the job says so); text beyond the second limit is cut.
MESHSITE_INDEX_MAX_BYTES = env_int("MESHSITE_INDEX_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)
MESHSITE_INDEX_MAX_CHARS = env_int("MESHSITE_INDEX_MAX_CHARS", 2_000_000, minimum=1000)
