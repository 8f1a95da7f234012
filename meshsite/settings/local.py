"""The embedded default and development: works with no configuration at all."""

import secrets

from .base import *  # noqa: F403
from .base import MESHSITE_TOKEN_SECRET, SECRET_KEY, VAR_DIR, env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
# A fixed development key keeps sessions and tokens valid across restarts of `make run`;
# production.py refuses to start without a real one.
SECRET_KEY = SECRET_KEY or "meshsite-insecure-development-key-change-me-in-production"


def _local_token_secret() -> str:
    """A random token-signing key kept in var/, made on first run: the development SECRET_KEY
    above is public, and a key derived from it would let anyone forge participant tokens."""
    path = VAR_DIR / "token-secret"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


MESHSITE_TOKEN_SECRET = MESHSITE_TOKEN_SECRET or _local_token_secret()
