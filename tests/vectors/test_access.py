"""Grant patterns as SQL regular expressions: the same answers as fnmatch, or a superset."""

import re
from fnmatch import fnmatchcase

import pytest

from vectors.access import glob_to_regex

PATHS = ["users/bob/a.txt", "users/bob/sub/b.md", "users/bobby/c", "docs/a.pdf", "docs/a.pdfx", "x[1].txt", "a.b"]


@pytest.mark.parametrize(
    "pattern", ["*", "users/bob/*", "docs/*.pdf", "docs/?.pdf", "x[[]1].txt", "[!u]*", "[a-d]*", "a.b", "users/bob*"]
)
def test_the_regex_matches_what_fnmatch_matches(pattern):
    regex = re.compile(glob_to_regex(pattern))
    for path in PATHS:
        if fnmatchcase(path, pattern):
            assert regex.search(path), (pattern, path)


@pytest.mark.parametrize("pattern", ["users/bob/*", "docs/*.pdf", "a.b", "[!u]*"])
def test_simple_patterns_translate_exactly(pattern):
    regex = re.compile(glob_to_regex(pattern))
    assert [bool(regex.search(p)) for p in PATHS] == [fnmatchcase(p, pattern) for p in PATHS]
