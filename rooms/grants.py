"""Token grants: role defaults, merging requested grants, and the checks every call goes through."""

from fnmatch import fnmatchcase
from typing import Any

from meshsite.errors import permission_denied

ROLES = ("user", "agent", "service")


def default_grants(role: str, identity: str) -> dict[str, Any]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    privileged = role != "user"
    return {
        "room_create": True,
        "toolkits": {"register": ["*"], "invoke": ["*"]},
        "messaging": True,
        "agents": {"call": ["*"], "ask": ["*"]},
        "threads": {"read": ["*"], "write": ["*"]},
        "storage": {"read": ["*"], "write": ["*"] if privileged else [f"users/{identity}/*"]},
        "queues": {"send": ["*"], "receive": ["*"] if privileged else []},
        "impersonate": role == "service",
        # read: usage.summary of the caller's own room, or of its whole project; approve: spending
        # past a soft budget of the room or project (asked by usage.request_approval): owners only
        "usage": {"read": ["project"] if role == "service" else ["room"], "approve": []},
    }


def merge_grants(base: dict[str, Any], requested: dict[str, Any] | None) -> dict[str, Any]:
    """Overlay requested grants on the role defaults, one level deep per section."""
    if not requested:
        return base
    unknown = set(requested) - set(base)
    if unknown:
        raise ValueError(f"unknown grant(s): {', '.join(sorted(unknown))}")
    merged = dict(base)
    for key, value in requested.items():
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"grant {key!r} must be an object")
            bad = set(value) - set(base[key])
            if bad:
                raise ValueError(f"unknown grant(s) in {key!r}: {', '.join(sorted(bad))}")
            for sub, patterns in value.items():
                if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                    raise ValueError(f"grant {key}.{sub} must be a list of patterns")
            merged[key] = {**base[key], **value}
        else:
            if not isinstance(value, bool):
                raise ValueError(f"grant {key!r} must be true or false")
            merged[key] = value
    return merged


def matches(patterns: list[str], *names: str) -> bool:
    if "*" in patterns:  # most tokens' grants: every routed call asks
        return True
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in names)


class Grants:
    """Read-only view over a token's grants, with the checks that raise protocol errors."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def _patterns(self, section: str, action: str) -> list[str]:
        value = self.raw.get(section, {})
        patterns = value.get(action, []) if isinstance(value, dict) else []
        return patterns if isinstance(patterns, list) else []

    def flag(self, name: str) -> bool:
        return self.raw.get(name) is True

    def may_invoke(self, toolkit: str, tool: str | None = None) -> bool:
        names = (toolkit, f"{toolkit}.{tool}") if tool else (toolkit, f"{toolkit}.*")
        return matches(self._patterns("toolkits", "invoke"), *names)

    def may(self, section: str, action: str, name: str) -> bool:
        return matches(self._patterns(section, action), name)

    def check_invoke(self, toolkit: str, tool: str) -> None:
        if not self.may_invoke(toolkit, tool):
            raise permission_denied(f"this token may not invoke {toolkit}.{tool}")

    def check_register(self, toolkit: str) -> None:
        if not matches(self._patterns("toolkits", "register"), toolkit):
            raise permission_denied(f"this token may not register a toolkit named {toolkit!r}")

    def check_flag(self, name: str, what: str) -> None:
        if not self.flag(name):
            raise permission_denied(f"this token may not {what}")
