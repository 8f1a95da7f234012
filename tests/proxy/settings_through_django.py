"""The test settings, serving the proxy through Django's URLs rather than mounted ahead of Django."""

from meshsite.settings.test import *  # noqa: F403

ASGI_APPLICATION = "meshsite.asgi.application_proxy_through_django"
