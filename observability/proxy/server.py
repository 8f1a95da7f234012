"""Meshsite's ASGI application with the metering proxy mounted ahead of Django
(`observability.proxy.asgi.mount`): serve this one (`ASGI_APPLICATION =
"observability.proxy.server.application"`, or `daphne observability.proxy.server:application`)
for the proxy's lowest overhead; everything else is served exactly as by `meshsite.asgi`."""

from meshsite.asgi import application as meshsite_application  # sets Django up first

from .asgi import mount

application = mount(meshsite_application)
