"""bench/proxy.py's second server: the embedded default's settings, serving the metering proxy
mounted ahead of Django (observability.proxy.server). Put bench/ on PYTHONPATH to use it."""

from meshsite.settings.local import *  # noqa: F403

ASGI_APPLICATION = "observability.proxy.server.application"
