import time

import jwt
import pytest

from rooms.tokens import TokenError, mint_token, signing_key, verify_token


def test_it_round_trips_identity_room_role_and_default_grants():
    token, expires = mint_token(project="acme", room="lobby", identity="alice")
    claims = verify_token(token)
    assert (claims.project, claims.room, claims.identity, claims.role) == ("acme", "lobby", "alice", "user")
    assert claims.expires_at == expires
    assert claims.grants.may_invoke("weather", "forecast")
    assert not claims.grants.flag("impersonate")
    assert claims.grants.may("storage", "write", "users/alice/notes.txt")
    assert not claims.grants.may("storage", "write", "users/bob/notes.txt")


def test_services_may_impersonate_by_default():
    token, _ = mint_token(project="acme", room="lobby", identity="ops", role="service")
    assert verify_token(token).grants.flag("impersonate")


def test_requested_grants_narrow_the_defaults():
    token, _ = mint_token(
        project="acme", room="lobby", identity="charlie", grants={"toolkits": {"invoke": ["weather.*"]}}
    )
    grants = verify_token(token).grants
    assert grants.may_invoke("weather", "forecast")
    assert not grants.may_invoke("messaging", "send")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "admin"}, "role must be one of"),
        ({"room": "Bad_Room"}, "room must be"),
        ({"identity": ""}, "identity must be"),
        ({"ttl": 0}, "ttl must be between"),
        ({"grants": {"superpowers": True}}, "unknown grant"),
        ({"grants": {"toolkits": {"invoke": "*"}}}, "must be a list of patterns"),
    ],
)
def test_it_refuses_bad_minting_input(kwargs, message):
    params = {"project": "acme", "room": "lobby", "identity": "alice", **kwargs}
    with pytest.raises(ValueError, match=message):
        mint_token(**params)


def claims(**overrides: int) -> dict:
    """Raw claims of a well-formed token for alice, to sign by hand."""
    return {
        "iss": "meshsite",
        "sub": "alice",
        "project": "acme",
        "room": "lobby",
        "role": "user",
        "iat": int(time.time()),
        **overrides,
    }


def test_it_refuses_an_expired_token():
    token = jwt.encode(
        claims(iat=int(time.time()) - 100, exp=int(time.time()) - 10),
        signing_key(),
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="token expired"):
        verify_token(token)


def test_it_refuses_a_token_signed_with_another_key():
    token = jwt.encode(
        claims(exp=int(time.time()) + 60),
        "not-the-server-key-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    with pytest.raises(TokenError, match="invalid token"):
        verify_token(token)


def test_it_refuses_an_unsigned_token():
    token = jwt.encode(
        claims(exp=int(time.time()) + 60),
        None,
        algorithm="none",
    )
    with pytest.raises(TokenError):
        verify_token(token)
