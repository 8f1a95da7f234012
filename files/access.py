"""Who may do what to which stored file: the `storage` grant section, checked on every operation.

Grants hold fnmatch patterns (`storage: {read: [...], write: [...]}`) matched case-sensitively
against the normalised path (files.paths), where `*` also matches `/`. Reading a file (download,
stat, and seeing it in a listing) needs `read`; writing, deleting and moving need `write` on every
path they touch (a move: source and destination). Listing a prefix is refused outright when no
read pattern can match anything below it, and otherwise returns only the files the caller may read.
"""

import re
from fnmatch import translate
from functools import lru_cache

from meshsite.errors import permission_denied
from rooms.grants import Grants

from .paths import normalize_path

SECTION = "storage"


def may_read(grants: Grants, path: str) -> bool:
    """Precondition: none; an invalid path raises MeshError (invalid arguments)."""
    return grants.may(SECTION, "read", normalize_path(path))


def may_write(grants: Grants, path: str) -> bool:
    return grants.may(SECTION, "write", normalize_path(path))


def check_read(grants: Grants, path: str) -> None:
    if not may_read(grants, path):
        raise permission_denied(f"this token may not read {path!r}", path=path)


def check_write(grants: Grants, path: str) -> None:
    if not may_write(grants, path):
        raise permission_denied(f"this token may not write {path!r}", path=path)


def read_patterns(grants: Grants) -> list[str]:
    section = grants.raw.get(SECTION, {})
    patterns = section.get("read", []) if isinstance(section, dict) else []
    return [p for p in patterns if isinstance(p, str)] if isinstance(patterns, list) else []


def may_list(grants: Grants, prefix: str) -> bool:
    """Whether some path starting with `prefix` (already normalised) could match a read pattern."""
    return any(pattern_allows_prefix(pattern, prefix) for pattern in read_patterns(grants))


def check_list(grants: Grants, prefix: str) -> None:
    if not may_list(grants, prefix):
        where = repr(prefix) if prefix else "the room's storage"
        raise permission_denied(f"this token may not read anything under {where}", prefix=prefix)


# --- "can this fnmatch pattern match some string that starts with this prefix?" -------------
# Simulates the pattern as an automaton over the prefix; if any state is still alive after the
# prefix, some continuation matches (fnmatch has no unsatisfiable constructs beyond odd classes).

Token = tuple[str, str]  # ("lit", char) | ("any", "") | ("star", "") | ("class", regex)


@lru_cache(maxsize=1024)
def _tokens(pattern: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if not tokens or tokens[-1][0] != "star":
                tokens.append(("star", ""))
        elif char == "?":
            tokens.append(("any", ""))
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                tokens.append(("lit", "["))
            else:
                tokens.append(("class", translate(pattern[i - 1 : j + 1])))
                i = j + 1
        else:
            tokens.append(("lit", char))
    return tuple(tokens)


def _step(token: Token, char: str) -> bool:
    kind, value = token
    if kind == "lit":
        return char == value
    if kind == "class":
        return re.match(value, char) is not None
    return True  # "any"


def _closure(tokens: tuple[Token, ...], states: set[int]) -> set[int]:
    result = set(states)
    for state in sorted(states):
        position = state
        while position < len(tokens) and tokens[position][0] == "star":
            position += 1
            result.add(position)
    return result


def pattern_allows_prefix(pattern: str, prefix: str) -> bool:
    tokens = _tokens(pattern)
    states = _closure(tokens, {0})
    for char in prefix:
        following: set[int] = set()
        for state in states:
            if state >= len(tokens):
                continue
            token = tokens[state]
            if token[0] == "star":
                following.add(state)  # the star absorbs the character
            elif _step(token, char):
                following.add(state + 1)
        states = _closure(tokens, following)
        if not states:
            return False
    return True
