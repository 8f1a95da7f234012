"""A webhook service: `agents.call` POSTs a signed invitation; the external agent joins by itself."""

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.conf import settings

from agents.actions import do_create_service
from agents.webhooks import verify_signature
from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
SECRET = "webhook-secret-for-tests"


class Receiver(BaseHTTPRequestHandler):
    invitations: list[dict] = []
    signatures_ok: list[bool] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.signatures_ok.append(verify_signature(SECRET, self.headers["X-Meshsite-Signature"], body))
        Receiver.invitations.append(json.loads(body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def public_server(django_db_setup, django_db_blocker):
    """A server that knows its public URL, as webhook invitations need."""
    port = free_port()
    with django_db_blocker.unblock():
        server = ServerProcess(
            port=port, redis_url=settings.REDIS_URL or None, env={"MESHSITE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        ).start()
    yield server
    server.stop()


async def test_a_webhook_service_is_invited_with_a_signed_token_and_joins_by_itself(mint, project, public_server):
    server = public_server
    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        await asyncio.to_thread(
            do_create_service,
            project,
            "outside-agent",
            kind="webhook",
            url=f"http://127.0.0.1:{receiver.server_port}/invite",
            secret=SECRET,
        )
        async with await RawPeer.connect(server.ws_url("lobby"), mint("alice")) as alice:
            calling = asyncio.create_task(
                alice.invoke("agents", "call", {"name": "outside-agent", "arguments": {"topic": "x"}}, timeout=10)
            )
            while not Receiver.invitations:
                await asyncio.sleep(0.05)
            invitation = Receiver.invitations[-1]
            assert Receiver.signatures_ok[-1] is True
            assert (invitation["room"], invitation["identity"], invitation["arguments"]) == (
                "lobby",
                "outside-agent",
                {"topic": "x"},
            )
            assert invitation["ws_url"] == server.ws_url("lobby")
            # The external agent joins with the token it was given.
            async with await RawPeer.connect(invitation["ws_url"], invitation["token"]) as outside:
                assert outside.ready["participant"]["role"] == "agent"
                called = (await calling)["result"]["output"]
                assert (called["status"], called["participant_id"]) == ("running", outside.id)
    finally:
        receiver.shutdown()


async def test_a_webhook_that_fails_is_a_clear_error(mint, project, public_server):
    server = public_server
    await asyncio.to_thread(
        do_create_service,
        project,
        "unreachable",
        kind="webhook",
        url=f"http://127.0.0.1:{free_port()}/nobody-listens",
        secret=SECRET,
    )
    async with await RawPeer.connect(server.ws_url("lobby"), mint("alice")) as alice:
        response = await alice.invoke("agents", "call", {"name": "unreachable"}, timeout=10)
        assert response["error"]["code"] == -32012
        assert "/nobody-listens failed" in response["error"]["message"]
