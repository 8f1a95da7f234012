"""`make run`'s composition in a fresh folder (migrate, demo, serve --agent-host; no Redis, SQLite):
the demo's `word-stats` Worker processes what a newcomer sends to the lobby's `jobs` queue, in the
web process itself."""

import asyncio
import json
import subprocess
import sys
import urllib.request

import pytest

from tests.e2e.test_embedded_default import embedded_env
from tests.support.peer import RawPeer
from tests.support.servers import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_the_demo_worker_counts_words_sent_to_the_lobby_queue(tmp_path):
    env = embedded_env(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    demo = subprocess.run([*manage, "demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert "word-stats, a Worker" in demo.stdout
    api_key = json.loads((tmp_path / "demo-credentials.json").read_text())["api_key"]
    port = free_port()
    server = subprocess.Popen(
        [*manage, "serve", "--port", str(port), "--agent-host"], cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    try:
        assert f"listening on http://127.0.0.1:{port}/" in server.stdout.readline().decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/tokens",
            method="POST",
            data=json.dumps({"room": "lobby", "identity": "newcomer"}).encode(),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        minted = json.loads(urllib.request.urlopen(request, timeout=10).read())
        async with await RawPeer.connect(minted["ws_url"], minted["token"]) as newcomer:
            sent = await newcomer.invoke("queues", "send", {"queue": "jobs", "body": "the quick brown fox"})
            message_id = sent["result"]["output"]["message_id"]
            announced = await newcomer.expect(
                lambda m: m.get("method") == "messaging.message" and m["params"]["type"] == "word-stats", timeout=30
            )
            assert announced["params"]["message"] == {"message_id": message_id, "words": 4, "characters": 19}
            assert announced["params"]["from"]["identity"] == "word-stats"
            # and the message is acknowledged: the queue is empty
            for _ in range(100):
                stats = (await newcomer.invoke("queues", "stats", {"queue": "jobs"}))["result"]["output"]
                if stats["visible"] == stats["in_flight"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert (stats["visible"], stats["in_flight"], stats["dead"]) == (0, 0, 0)
    finally:
        server.terminate()
        assert server.wait(30) == 0
