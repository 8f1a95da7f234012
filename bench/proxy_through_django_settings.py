"""bench/proxy.py's second server: the embedded default's settings, serving the metering proxy
through Django's URLs (not mounted ahead of Django). Put bench/ on PYTHONPATH to use it."""

from meshsite.settings.local import *  # noqa: F403

ASGI_APPLICATION = "meshsite.asgi.application_proxy_through_django"
