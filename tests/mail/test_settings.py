"""Strict parsing of the mail settings: a bad secret stops start-up with a clear message."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from meshsite.settings.mail import basic_auth_pairs


def test_webhook_secrets_are_user_password_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", "hook:0123456789abcdef, old:fedcba9876543210")
    assert basic_auth_pairs("ANYMAIL_WEBHOOK_SECRET") == ["hook:0123456789abcdef", "old:fedcba9876543210"]
    monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", "")
    assert basic_auth_pairs("ANYMAIL_WEBHOOK_SECRET") == []


@pytest.mark.parametrize("value", ["no-colon-here-at-all", ":0123456789abcdef", "hook:short", "hook:0123456789 abcdef"])
def test_a_malformed_or_weak_webhook_secret_stops_start_up(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", value)
    with pytest.raises(ImproperlyConfigured, match="ANYMAIL_WEBHOOK_SECRET must be 'user:password' pairs"):
        basic_auth_pairs("ANYMAIL_WEBHOOK_SECRET")
