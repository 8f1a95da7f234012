"""Who may retrieve which chunk: the grants on its source.

A `file` chunk is readable by whoever may read its path in room storage (files.access), a
`thread` chunk by readers of its thread (`threads.read`), a `custom` chunk by any caller of the
`vectors`/`rag` toolkits (their invoke grant was checked on the way in).

Searches filter *before* ranking: the grant patterns become SQL regular expressions in the query
(`sql_patterns`), so the top-k are taken among readable chunks only. The translation is
conservative (a character class it cannot express exactly matches any character), so it never
hides a readable chunk; the exact check (`may_read_chunk`) then runs on every row returned.
"""

from collections.abc import Callable

from files.access import may_read
from meshsite.errors import MeshError
from rooms.grants import Grants

from .models import SourceKind

REGEX_SPECIAL = set(".^$*+?()[]{}|\\")


def may_read_chunk(grants: Grants, kind: str, ref: str) -> bool:
    if kind == SourceKind.FILE:
        try:
            return may_read(grants, ref)
        except MeshError:  # a path that is no longer valid is nobody's
            return False
    if kind == SourceKind.THREAD:
        return grants.may("threads", "read", ref)
    return kind == SourceKind.CUSTOM


def reader(grants: Grants) -> Callable[[str, str], bool]:
    return lambda kind, ref: may_read_chunk(grants, kind, ref)


def glob_to_regex(pattern: str) -> str:
    """fnmatch (`*` also matches `/`) as an anchored POSIX regular expression, or a superset."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
            else:
                body = pattern[i:j]
                i = j + 1
                if "\\" in body or "[" in body or not body.lstrip("!"):
                    out.append(".")  # not expressible simply: any character (a superset)
                else:
                    out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
        else:
            out.append("\\" + char if char in REGEX_SPECIAL else char)
    out.append("$")
    return "".join(out)


def _patterns(grants: Grants, section: str) -> list[str]:
    value = grants.raw.get(section, {})
    patterns = value.get("read", []) if isinstance(value, dict) else []
    return [p for p in patterns if isinstance(p, str)] if isinstance(patterns, list) else []


def sql_patterns(grants: Grants) -> dict[str, list[str]]:
    """Regular expressions per source kind whose union covers what the grants let one read."""
    return {
        SourceKind.FILE: [glob_to_regex(p) for p in _patterns(grants, "storage")],
        SourceKind.THREAD: [glob_to_regex(p) for p in _patterns(grants, "threads")],
    }
