"""Storage paths: one canonical spelling per file, so a grant pattern sees what the storage stores.

A path is relative, `/`-separated, case-sensitive Unicode, stored in NFC. `normalize_path` either
returns that canonical form or raises `MeshError` (invalid arguments) saying why. Refused:

- empty paths, a leading `/` (absolute), a trailing `/`, empty segments (`a//b`);
- `.` and `..` segments, and backslashes (no second separator that a backend or client might honour);
- control, format and separator characters (NUL, newlines, zero-width joiners, bidi overrides, ...),
  surrogates and private-use or unassigned code points;
- look-alikes of a separator or dot segment: any segment whose compatibility form (NFKC) contains
  `/` or `\\` or is `.`/`..` (fullwidth solidus U+FF0F, one-dot leader U+2024, ...), and the
  slashes NFKC keeps but that read as one (division slash U+2215, fraction slash U+2044, ...);
- a segment starting with a combining mark (it would draw over the `/` before it) and segments
  with leading or trailing whitespace;
- segments over 255 UTF-8 bytes, paths over 1024 UTF-8 bytes, more than 64 segments.

Decomposed input (NFD, `e` + U+0301) is accepted and normalised to NFC, so both spellings name the
same file and match the same grant. Grant patterns use fnmatch, where `*` also matches `/`:
`users/bob/*` covers everything below `users/bob/`, which is why the path must be normalised
before it is matched.
"""

import unicodedata
from typing import Any

from meshsite.errors import ErrorCode, MeshError

MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
MAX_SEGMENTS = 64
# Control, format, line/paragraph separators, surrogates, private use, unassigned.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
SEPARATORS = ("/", "\\")
# Slashes that NFKC leaves alone but that read as '/' or '\\' (Unicode confusables).
LOOKALIKE_SLASHES = frozenset("\u2044\u2215\u2216\u2571\u2572\u27cb\u27cd\u29f5\u29f8\u29f9\u1735\u244a\ufe68\u3033")


def bad_path(message: str, field: str = "path", **data: Any) -> MeshError:
    return MeshError(
        ErrorCode.INVALID_ARGUMENTS,
        f"invalid {field}: {message}",
        errors=[{"path": f"/{field}", "message": message}],
        **data,
    )


def _check_segment(segment: str, field: str) -> None:
    if not segment:
        raise bad_path("empty segment (a leading, trailing or doubled '/')", field)
    if segment in (".", ".."):
        raise bad_path(f"'{segment}' segments are not allowed", field)
    if len(segment.encode()) > MAX_SEGMENT_BYTES:
        raise bad_path(f"a segment is longer than {MAX_SEGMENT_BYTES} bytes", field)
    if segment != segment.strip():
        raise bad_path("a segment starts or ends with whitespace", field)
    if unicodedata.combining(segment[0]) or unicodedata.category(segment[0]).startswith("M"):
        raise bad_path("a segment starts with a combining mark", field)
    for char in segment:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            raise bad_path(f"character U+{ord(char):04X} is not allowed", field)
    compatible = unicodedata.normalize("NFKC", segment)
    lookalike = any(sep in compatible for sep in SEPARATORS) or not LOOKALIKE_SLASHES.isdisjoint(compatible)
    if lookalike or compatible.strip() in (".", ".."):
        raise bad_path("a segment contains a look-alike of '/', '\\' or a dot segment", field)


def _normalize(value: object, field: str, *, allow_empty: bool, allow_trailing_slash: bool) -> str:
    if not isinstance(value, str):
        raise bad_path("must be a string", field)
    if "\x00" in value:
        raise bad_path("NUL is not allowed", field)
    if "\\" in value:
        raise bad_path("backslashes are not allowed; use '/'", field)
    if any(0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise bad_path("lone surrogates are not allowed", field)
    path = unicodedata.normalize("NFC", value)
    if len(path.encode()) > MAX_PATH_BYTES:
        raise bad_path(f"longer than {MAX_PATH_BYTES} bytes", field)
    if path == "":
        if allow_empty:
            return ""
        raise bad_path("must not be empty", field)
    if path.startswith("/"):
        raise bad_path("absolute paths are not allowed; paths are relative to the room", field)
    body = path[:-1] if allow_trailing_slash and path.endswith("/") else path
    segments = body.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise bad_path(f"more than {MAX_SEGMENTS} segments", field)
    for segment in segments:
        _check_segment(segment, field)
    return path


def normalize_path(path: str, *, field: str = "path") -> str:
    """The canonical (NFC) form of a file path, or MeshError (invalid arguments) saying why not."""
    return _normalize(path, field, allow_empty=False, allow_trailing_slash=False)


def normalize_prefix(prefix: str, *, field: str = "prefix") -> str:
    """A listing prefix: "" (the whole room), a folder ending in '/', or any leading part of a path."""
    return _normalize(prefix, field, allow_empty=True, allow_trailing_slash=True)
