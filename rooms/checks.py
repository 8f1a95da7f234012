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


MIN_TOKEN_SECRET_LENGTH = 32


@register(deploy=True)
def check_token_secret_strength(app_configs: Any, **kwargs: Any) -> list[Warning]:
    secret = settings.MESHSITE_TOKEN_SECRET
    if secret and len(secret) < MIN_TOKEN_SECRET_LENGTH:
        return [
            Warning(
                f"MESHSITE_TOKEN_SECRET is shorter than {MIN_TOKEN_SECRET_LENGTH} characters.",
                hint="Anyone who guesses it can forge participant tokens: use e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`.",
                id="rooms.W002",
            )
        ]
    return []
