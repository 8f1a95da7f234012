"""Browser sockets must come from an allowed origin; clients that send no Origin are not browsers."""

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


class BrowserOriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = next((value for name, value in scope.get("headers", []) if name == b"origin"), None)
        if origin is not None and not self.allowed(origin.decode("latin1")):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)

    @staticmethod
    def allowed(origin: str) -> bool:
        if origin in settings.MESHSITE_ALLOWED_ORIGINS or "*" in settings.MESHSITE_ALLOWED_ORIGINS:
            return True
        host = urlsplit(origin).netloc
        if not host:
            return False
        domain, _port = split_domain_port(host)
        return validate_host(domain, settings.ALLOWED_HOSTS)
