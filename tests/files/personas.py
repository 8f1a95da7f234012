"""Storage grants of the named personas: alice may do anything, bob only under `users/bob/`,
charlie nothing."""

from typing import Any

from rooms.grants import Grants, default_grants, merge_grants

STORAGE_GRANTS: dict[str, dict[str, Any]] = {
    "alice": {"storage": {"read": ["*"], "write": ["*"]}},
    "bob": {"storage": {"read": ["users/bob/*"], "write": ["users/bob/*"]}},
    "charlie": {"storage": {"read": [], "write": []}},
}


def grants_of(identity: str) -> Grants:
    return Grants(merge_grants(default_grants("user", identity), STORAGE_GRANTS[identity]))
