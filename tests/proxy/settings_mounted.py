"""The test settings, serving the proxy mounted ahead of Django (observability.proxy.server)."""

from meshsite.settings.test import *  # noqa: F403

ASGI_APPLICATION = "observability.proxy.server.application"
