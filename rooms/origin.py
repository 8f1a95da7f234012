"""Browser sockets must come from an allowed origin; clients that send no Origin are not browsers.

An origin is allowed when it is listed in MESHSITE_ALLOWED_ORIGINS (exact scheme://host[:port], or
`*`), or when it is this server's own origin: same scheme (http for ws, https for wss, or the
proxy's forwarded protocol when SECURE_PROXY_SSL_HEADER is set), same host, same port. Matching on
the host alone would let any other service on the same host (another port) open sockets with a
signed-in user's cookies-derived token.
"""

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin1"))
    return None


def own_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    host = header(scope, b"host")
    if not host:
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        forwarded = header(scope, proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode("latin1"))
        if forwarded:
            scheme = "https" if forwarded == proxy[1] else "http"
    return _normalise(f"{scheme}://{host}")


def _normalise(origin: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def origin_allowed(origin: str, scope: dict[str, Any]) -> bool:
    allowed = settings.MESHSITE_ALLOWED_ORIGINS
    if "*" in allowed:
        return True
    normalised = _normalise(origin)
    if normalised is None:
        return False
    if any(_normalise(entry) == normalised for entry in allowed):
        return True
    return normalised == own_origin(scope)


class BrowserOriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = header(scope, b"origin")
        if origin is not None and not origin_allowed(origin, scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
