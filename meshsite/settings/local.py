"""The embedded default and development: works with no configuration at all."""

from .base import *  # noqa: F403
from .base import SECRET_KEY, env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
# A fixed development key keeps sessions and tokens valid across restarts of `make run`;
# production.py refuses to start without a real one.
SECRET_KEY = SECRET_KEY or "meshsite-insecure-development-key-change-me-in-production"
