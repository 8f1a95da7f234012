"""System checks: fail at start-up, not at the first connection."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_meshsite_settings(app_configs: Any, **kwargs: Any) -> list[Error | Warning]:
    problems: list[Error | Warning] = []
    if settings.MESHSITE_DEFAULT_TIMEOUT > settings.MESHSITE_MAX_TIMEOUT:
        problems.append(
            Error(
                "MESHSITE_DEFAULT_TIMEOUT is larger than MESHSITE_MAX_TIMEOUT.",
                hint="Lower MESHSITE_DEFAULT_TIMEOUT or raise MESHSITE_MAX_TIMEOUT.",
                id="rooms.E001",
            )
        )
    if not settings.DEBUG and not settings.MESHSITE_TOKEN_SECRET:
        problems.append(
            Warning(
                "MESHSITE_TOKEN_SECRET is not set; participant tokens are signed with a key derived from SECRET_KEY.",
                hint="Set MESHSITE_TOKEN_SECRET so tokens can be rotated apart from sessions.",
                id="rooms.W001",
            )
        )
    return problems
