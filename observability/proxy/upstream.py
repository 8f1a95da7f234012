"""Where a project's requests go, and the one pooled HTTP client that takes them there."""

import asyncio
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass

import httpx
from django.conf import settings

from .errors import ProxyError

# Request headers passed on to the upstream (besides the body's content type, the upstream's own
# key and the trace context, which the proxy sets): anything else a client sends (its credential,
# OpenAI-Organization / OpenAI-Project, SDK telemetry) stays here.
FORWARDED_REQUEST_HEADERS = ("accept", "user-agent", "openai-beta", "idempotency-key")

# Response headers not passed back: hop-by-hop and framing (the proxy frames its own answer; a
# decoded body loses its content-encoding), the upstream's own request id (sent back as
# x-upstream-request-id) and what names the operator's upstream account.
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "content-encoding",
        "date",
        "server",
        "set-cookie",
        "x-request-id",
        "openai-organization",
        "openai-project",
    }
)


# httpx logs every request at INFO ("HTTP Request: POST … 200 OK"): one line per proxied call is
# noise next to the usage records, and costs as much as a good part of the proxying. Only the
# proxy's own calls are left out; other httpx users (an in-process agent's OpenAI client) log as before.
proxying: ContextVar[bool] = ContextVar("meshsite_proxying", default=False)


class _NotProxying(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not proxying.get()


logging.getLogger("httpx").addFilter(_NotProxying())


@dataclass(frozen=True)
class Upstream:
    url: str  # base URL, `…/v1`
    key: str


def upstream_for(project_slug: str) -> Upstream:
    """The project's own upstream (MESHSITE_PROXY_UPSTREAMS), else the server's."""
    own = settings.MESHSITE_PROXY_UPSTREAMS.get(project_slug)
    if own is not None:
        return Upstream(own["url"], own["key"])
    if not settings.MESHSITE_PROXY_UPSTREAM_URL:
        raise ProxyError(
            503,
            "the model proxy has no upstream configured (MESHSITE_PROXY_UPSTREAM_URL)",
            type="server_error",
            code="proxy_not_configured",
        )
    return Upstream(settings.MESHSITE_PROXY_UPSTREAM_URL, settings.MESHSITE_PROXY_UPSTREAM_KEY)


_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None


def client() -> httpx.AsyncClient:
    """The process's pooled client (keep-alive connections to the upstreams), made on first use
    in the serving event loop."""
    global _client
    loop = asyncio.get_running_loop()
    if _client is None or _client[0] is not loop:
        _client = (
            loop,
            httpx.AsyncClient(
                timeout=httpx.Timeout(settings.MESHSITE_PROXY_TIMEOUT, connect=10.0),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=256, keepalive_expiry=20),
                follow_redirects=False,
                trust_env=False,
            ),
        )
    return _client[1]


def request_headers(incoming: Mapping[str, str], upstream: Upstream, traceparent: str) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    for name in FORWARDED_REQUEST_HEADERS:
        value = incoming.get(name)
        if value:
            headers[name] = value
    if upstream.key:
        headers["authorization"] = f"Bearer {upstream.key}"
    if traceparent:
        headers["traceparent"] = traceparent
    return headers


def response_headers(upstream: httpx.Response) -> dict[str, str]:
    headers = {name: value for name, value in upstream.headers.items() if name not in DROPPED_RESPONSE_HEADERS}
    if "x-request-id" in upstream.headers:
        headers["x-upstream-request-id"] = upstream.headers["x-request-id"]
    return headers
