"""Parsing the metering proxy's per-project upstreams (docs/billing.md, "Metering proxy")."""

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured

NAME = "MESHSITE_PROXY_UPSTREAMS"


def proxy_url(raw: str) -> str:
    """MESHSITE_PROXY_UPSTREAM_URL: empty (no upstream), or an http(s) base URL such as
    `https://api.openai.com/v1` (no trailing slash kept)."""
    url = raw.strip()
    if url and not url.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"MESHSITE_PROXY_UPSTREAM_URL must be an http(s) URL, got {raw!r}")
    return url.rstrip("/")


def proxy_upstreams(raw: str) -> dict[str, dict[str, str]]:
    """`{"<project slug>": {"url": "https://…/v1", "key": "sk-…"}, …}` → the same, checked.

    `url` is required and must be http(s); `key` is optional (a local server may need none)."""
    if not raw.strip():
        return {}
    try:
        value: Any = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{NAME} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f'{NAME} must be a JSON object {{"<project slug>": {{"url": …, "key": …}}}}')
    upstreams: dict[str, dict[str, str]] = {}
    for slug, entry in value.items():
        if not isinstance(entry, dict) or set(entry) - {"url", "key"}:
            raise ImproperlyConfigured(f'{NAME}[{slug!r}] must be an object with "url" and optionally "key"')
        url, key = entry.get("url"), entry.get("key", "")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured(f"{NAME}[{slug!r}].url must be an http(s) URL, got {url!r}")
        if not isinstance(key, str):
            raise ImproperlyConfigured(f"{NAME}[{slug!r}].key must be a string")
        upstreams[slug] = {"url": url.rstrip("/"), "key": key}
    return upstreams
