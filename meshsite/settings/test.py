"""Settings for the test suite: the same env-driven wiring, fast hashing, quiet logs."""

from .base import *  # noqa: F403
from .base import DATABASES, LOGGING, VAR_DIR, env_bool, env_float

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not SQLite's in-memory default: end-to-end tests start server processes that must
    # see the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-meshsite.sqlite3")}

SECRET_KEY = "meshsite-test-secret-key-not-for-production-use-0123456789"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}
# Tests create prices in one process and price usage in a server process: read them every time
# (tests/observability/test_price_cache.py turns the cache on).
MESHSITE_PRICE_CACHE_SECONDS = env_float("MESHSITE_PRICE_CACHE_SECONDS", 0.0, minimum=0)
# The Indexer would embed every thread message and file other apps' tests write (loading the local
# model in their processes and workers): off unless a test turns it on (tests/vectors do).
MESHSITE_INDEXER = env_bool("MESHSITE_INDEXER", False)
