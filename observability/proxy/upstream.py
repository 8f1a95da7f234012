"""Where a project's requests go, and the pooled HTTP client (aiohttp) that takes them there."""

import asyncio
import atexit
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
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


CONNECT_TIMEOUT = 10.0  # seconds to connect; MESHSITE_PROXY_TIMEOUT is for each read after that

# One session per event loop (daphne serves on one): its pool keeps connections to the upstreams
# alive between requests. No cap on connections (aiohttp's default is 100): a cap would queue the
# next request behind streams that may run for minutes. Idle connections close after 20 s. No
# overall time limit: a stream lasts as long as its upstream keeps sending. A compressed body is
# decoded (the proxy asks for `identity`, and drops content-encoding); cookies an upstream sets
# are not kept (they would go out with other projects' requests).
_session: tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession] | None = None


def session() -> aiohttp.ClientSession:
    """The serving event loop's pooled session, made on first use."""
    global _session
    loop = asyncio.get_running_loop()
    if _session is None or _session[0] is not loop:
        if _session is not None:
            _discard(*_session)
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=settings.MESHSITE_PROXY_TIMEOUT)
        _session = (
            loop,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=20),
                timeout=timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            ),
        )
    return _session[1]


async def close_session() -> None:
    """Closes the running loop's session, if any (the server's graceful stop)."""
    global _session
    if _session is not None and _session[0] is asyncio.get_running_loop():
        current, _session = _session[1], None
        await current.close()


def _discard(loop: asyncio.AbstractEventLoop, stale: aiohttp.ClientSession) -> None:
    """Lets go of a session whose loop is no longer the serving one (or at exit), without the
    "Unclosed client session" warning: its sockets belong to that loop, which may be closed, so
    they are closed synchronously (aiohttp's `close()` is a coroutine on that loop)."""
    if stale.closed:
        return
    connector = stale.connector
    if connector is not None and not loop.is_running():
        connector._close()  # the sync part of `close()`: closes the transports
    stale.detach()


@atexit.register
def _close_at_exit() -> None:
    if _session is not None:
        _discard(*_session)


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


def response_headers(upstream: aiohttp.ClientResponse) -> dict[str, str]:
    """The upstream's headers as the client gets them: lower-case names, a repeated one joined
    with ", " (as one header), less the dropped ones; its request id as x-upstream-request-id."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in upstream.raw_headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "x-request-id":
            headers["x-upstream-request-id"] = value
        elif name not in DROPPED_RESPONSE_HEADERS:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers
