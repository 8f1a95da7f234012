"""What a newcomer's `make run` does, in a fresh folder: migrate, demo data, serve, connect."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.peer import RawPeer
from tests.support.servers import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "REDIS_URL", "OPENAI_"))
    }
    return {**env, "DJANGO_SETTINGS_MODULE": "meshsite.settings.local", "MESHSITE_VAR_DIR": str(var_dir)}


async def test_the_embedded_default_runs_with_no_configuration(tmp_path):
    env = embedded_env(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    first = subprocess.run([*manage, "demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    again = subprocess.run([*manage, "demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
    assert credentials["api_key"] in first.stdout and credentials["api_key"] in again.stdout
    assert (tmp_path / "meshsite.sqlite3").exists()

    port = free_port()
    server = subprocess.Popen(
        [*manage, "serve", "--port", str(port), "--agent-host"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert f"listening on http://127.0.0.1:{port}/" in server.stdout.readline().decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/tokens",
            method="POST",
            data=json.dumps({"room": "lobby", "identity": "newcomer"}).encode(),
            headers={"Authorization": f"Bearer {credentials['api_key']}", "Content-Type": "application/json"},
        )
        minted = json.loads(urllib.request.urlopen(request, timeout=10).read())
        assert minted["ws_url"] == f"ws://127.0.0.1:{port}/rooms/lobby/ws"
        async with await RawPeer.connect(minted["ws_url"], minted["token"]) as newcomer:
            assert newcomer.ready["room"] == {"name": "lobby", "project": "demo"}
            # The always-on assistant (a ChatBot) is in the lobby, or joins in a moment.
            if not any(p["agent"] == "assistant" for p in newcomer.ready["participants"]):
                await newcomer.expect(
                    lambda m: (
                        m.get("method") == "participant.joined" and m["params"]["participant"]["agent"] == "assistant"
                    ),
                    timeout=20,
                )
            # With no model configured it answers in the thread with what to set.
            created = await newcomer.invoke("threads", "create", {"title": "Hello"})
            thread_id = created["result"]["output"]["thread"]["id"]
            await newcomer.invoke("threads", "post", {"thread_id": thread_id, "text": "Hi!"})
            answer = await newcomer.expect(
                lambda m: (
                    m.get("method") == "threads.message" and m["params"]["message"]["author"]["identity"] == "assistant"
                ),
                timeout=20,
            )
            assert "OPENAI_API_KEY" in answer["params"]["message"]["parts"][0]["text"]
            # The demo TaskRunner, run by the in-process agent host: call it, then ask it.
            agents = (await newcomer.invoke("agents", "list"))["result"]["output"]["agents"]
            [counter] = [a for a in agents if a["name"] == "word-counter"]
            example = counter["input_schema"]["examples"][0]
            called = await newcomer.invoke("agents", "call", {"name": "word-counter"}, timeout=20)
            assert called["result"]["output"]["status"] == "running"
            asked = await newcomer.invoke("agents", "ask", {"agent": "word-counter", "arguments": example})
            assert asked["result"]["output"] == {"words": 9, "characters": 43}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=10) as page:
            assert page.status == 200
    finally:
        server.terminate()
        assert server.wait(20) == 0
