"""Paths have one canonical spelling; anything that could escape a grant or the room is refused."""

import pytest
from meshsite_client.protocol import ErrorCode

from files.paths import MAX_PATH_BYTES, MAX_SEGMENT_BYTES, normalize_path, normalize_prefix
from meshsite.errors import MeshError


@pytest.mark.parametrize(
    "path",
    ["notes.md", "users/bob/report.pdf", "a b/c-d_e.f", "日本語/ファイル.txt", "users/bob/.hidden", "x..y", "…/a"],
)
def test_it_accepts_ordinary_relative_paths(path):
    assert normalize_path(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("//server/share", "absolute"),
        ("../secret", "'..'"),
        ("users/bob/../alice/x", "'..'"),
        ("users/bob/..", "'..'"),
        ("./a", "'.'"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\\..\\b", "backslash"),
        ("users/bob\\..\\alice", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "U+000A"),
        ("a\x7fb", "U+007F"),
        ("users/bob/\u202etxt.exe", "U+202E"),  # right-to-left override
        ("users/bob\u200b/x", "U+200B"),  # zero-width space
        ("users/bob\uff0f..\uff0falice/x", "look-alike"),  # fullwidth solidus
        ("users/bob\u2215x", "look-alike"),  # division slash (NFKC keeps it)
        ("users/\u2024\u2024/x", "look-alike"),  # one-dot leaders: NFKC '..'
        ("users/\uff0e\uff0e/x", "look-alike"),  # fullwidth full stops
        ("users/bob/\u0338x", "combining mark"),  # combining long solidus overlay after '/'
        ("users/ bob/x", "whitespace"),
        ("users/bob /x", "whitespace"),
        ("a" * (MAX_SEGMENT_BYTES + 1), "longer than"),
        ("/".join(["abcdefgh"] * 120), "longer than"),
        ("/".join(["a"] * 65), "more than 64"),
        ("users/\udc00/x", "surrogate"),
        ("users/\ue000/x", "U+E000"),  # private use
    ],
)
def test_it_refuses_paths_that_could_escape_or_deceive(path, reason):
    with pytest.raises(MeshError) as raised:
        normalize_path(path)
    assert raised.value.code == ErrorCode.INVALID_ARGUMENTS
    assert reason in raised.value.message, raised.value.message
    assert raised.value.data["errors"][0]["path"] == "/path"


def test_decomposed_and_composed_spellings_name_the_same_file():
    composed, decomposed = "users/bob/caf\u00e9.txt", "users/bob/cafe\u0301.txt"
    assert normalize_path(decomposed) == normalize_path(composed) == composed


def test_it_refuses_paths_that_are_too_long_in_bytes_even_when_short_in_characters():
    segment = "é" * (MAX_SEGMENT_BYTES // 2 + 1)  # 2 bytes each in UTF-8
    with pytest.raises(MeshError):
        normalize_path(segment)
    assert len(("x/" * (MAX_PATH_BYTES // 2)).encode()) >= MAX_PATH_BYTES


def test_it_refuses_what_is_not_a_string():
    with pytest.raises(MeshError):
        normalize_path(None)  # type: ignore[arg-type]


def test_a_listing_prefix_may_be_empty_or_end_with_a_slash_but_not_escape():
    assert normalize_prefix("") == ""
    assert normalize_prefix("users/bob/") == "users/bob/"
    assert normalize_prefix("users/bo") == "users/bo"
    for bad in ("../", "/users", "users//", "users/../"):
        with pytest.raises(MeshError):
            normalize_prefix(bad)
