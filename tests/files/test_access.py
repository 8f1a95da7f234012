"""Every storage operation is gated by the token's storage grants, on the normalised path."""

import pytest
from meshsite_client.protocol import ErrorCode

from files.access import check_list, check_read, check_write, may_list, may_read, may_write, pattern_allows_prefix
from meshsite.errors import MeshError

from .personas import grants_of


def test_alice_may_read_and_write_everything():
    alice = grants_of("alice")
    assert may_read(alice, "users/bob/x") and may_write(alice, "shared/plan.md") and may_list(alice, "")


def test_bob_may_only_touch_his_own_folder_at_any_depth():
    bob = grants_of("bob")
    assert may_read(bob, "users/bob/a/b/c.txt") and may_write(bob, "users/bob/x")
    assert not may_read(bob, "users/alice/x") and not may_write(bob, "shared/x")
    assert not may_write(bob, "users/bobby/x")
    with pytest.raises(MeshError) as raised:
        check_write(bob, "users/alice/x")
    assert raised.value.code == ErrorCode.PERMISSION_DENIED


def test_charlie_may_do_nothing():
    charlie = grants_of("charlie")
    for check in (check_read, check_write):
        with pytest.raises(MeshError):
            check(charlie, "anything")
    with pytest.raises(MeshError):
        check_list(charlie, "")


def test_traversal_cannot_reach_outside_a_grant():
    bob = grants_of("bob")
    for sneaky in ("users/bob/../alice/x", "users/bob/..\uff0falice/x", "users/bob/\u2024\u2024/alice"):
        with pytest.raises(MeshError) as raised:
            may_read(bob, sneaky)
        assert raised.value.code == ErrorCode.INVALID_ARGUMENTS


def test_the_decomposed_spelling_matches_the_same_grant():
    grants = grants_of("alice")
    grants.raw["storage"] = {"read": ["caf\u00e9/*"], "write": []}
    assert may_read(grants, "cafe\u0301/menu.txt")


def test_listing_is_allowed_only_where_some_read_pattern_can_match():
    bob = grants_of("bob")
    assert may_list(bob, "") and may_list(bob, "users/") and may_list(bob, "users/bob/") and may_list(bob, "users/b")
    assert not may_list(bob, "users/alice/") and not may_list(bob, "shared")


@pytest.mark.parametrize(
    ("pattern", "prefix", "allowed"),
    [
        ("*", "anything/at/all", True),
        ("users/*/inbox/*", "users/zoe/", True),
        ("users/*/inbox/*", "users/zoe/outbox/x", True),  # `*` matches '/': ".../outbox/x/inbox/y" would match
        ("reports/2024-??.md", "reports/2024-1", True),
        ("reports/2024-??.md", "reports/2025", False),
        ("[ab]*/x", "b/", True),
        ("[ab]*/x", "c", False),
        ("[!ab]*", "a", False),
        ("exact.txt", "exact.txt", True),
        ("exact.txt", "exact.txt2", False),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_a_prefix_is_listable_when_some_continuation_matches(pattern, prefix, allowed):
    assert pattern_allows_prefix(pattern, prefix) is allowed
