"""ASGI entry point: the metering proxy's `/v1/` routes are answered ahead of Django (they need
none of its middleware, and going through it costs most of the proxy's overhead), other HTTP goes
to Django, WebSockets to the room consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshsite.settings.local")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from observability.proxy.asgi import mount  # noqa: E402
from rooms.origin import BrowserOriginValidator  # noqa: E402
from rooms.routing import websocket_urlpatterns  # noqa: E402

websocket_app = BrowserOriginValidator(URLRouter(websocket_urlpatterns))

application = ProtocolTypeRouter({"http": mount(django_asgi_app), "websocket": websocket_app})

# The same, with the proxy served through Django's URLs (`observability.proxy.urls`) instead:
# kept to measure what mounting saves (bench/proxy.py) and to test both ways (tests/proxy/).
application_proxy_through_django = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})
