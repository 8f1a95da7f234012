"""The embedded default is safe to expose by accident: no forgeable tokens, no cached token pages."""

import hashlib
import os
import stat
import subprocess
import sys

import jwt
import pytest
from django.contrib.auth.models import User

from rooms.actions.projects import do_create_project
from tests.support.servers import ROOT

PUBLIC_DEV_KEY = "meshsite-insecure-development-key-change-me-in-production"


def run_local(code: str, var_dir, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.local",
            "MESHSITE_VAR_DIR": str(var_dir),
            "DATABASE_URL": "",
            "MESHSITE_TOKEN_SECRET": "",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_embedded_default_signs_tokens_with_a_random_key_kept_in_var(tmp_path):
    code = "from rooms.tokens import signing_key; print(signing_key())"
    first = run_local(code, tmp_path)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 48
    secret_file = tmp_path / "token-secret"
    assert secret_file.read_text().strip() == key
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert run_local(code, tmp_path).stdout.strip() == key  # kept across restarts
    assert run_local(code, tmp_path / "elsewhere").stdout.strip() != key  # random per installation


def test_a_token_forged_with_the_public_development_key_is_refused(tmp_path):
    derived = hashlib.sha256(f"meshsite-tokens:{PUBLIC_DEV_KEY}".encode()).hexdigest()
    forged = jwt.encode(
        {
            "iss": "meshsite",
            "sub": "mallory",
            "project": "demo",
            "room": "lobby",
            "role": "service",
            "iat": 0,
            "exp": 2**40,
        },
        derived,
        algorithm="HS256",
    )
    result = run_local(f"from rooms.tokens import verify_token; verify_token({forged!r})", tmp_path)
    assert result.returncode != 0
    assert "TokenError: invalid token" in result.stderr


@pytest.mark.parametrize(("secret", "warned"), [("short", True), ("x" * 48, False)])
def test_check_deploy_warns_about_a_short_token_secret(tmp_path, secret, warned):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.local",
            "MESHSITE_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "",
            "MESHSITE_TOKEN_SECRET": secret,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ("rooms.W002" in result.stderr + result.stdout) is warned


def test_the_studio_page_that_embeds_a_token_is_never_cached(client, transactional_db):
    project = do_create_project("acme")
    user = User.objects.create_superuser("alice", "alice@example.com", "secret-password")
    client.force_login(user)
    response = client.get(f"/studio/{project.slug}/lobby/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
