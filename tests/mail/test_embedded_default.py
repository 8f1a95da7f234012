"""The embedded default as a newcomer runs it: one server process (no broker: background work in
the process, the MailWorker joining its own server), raw MIME posted to it over HTTP, a person in
the room watching the conversation arrive live in a thread, the reply in a local SMTP server."""

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from mail.models import Mailbox
from mail.sink import SmtpSink
from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess, free_port

from .conftest import fixture_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink(port=free_port()) as running:
        yield running


@pytest.fixture
def embedded(sink: SmtpSink, django_db_blocker: Any) -> Iterator[ServerProcess]:
    env = {"REDIS_URL": "", "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(sink.port)}
    with django_db_blocker.unblock():
        server = ServerProcess(env=env).start()
    yield server
    server.stop()


def post_raw(server: ServerProcess, api_key: str, raw: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.http_url}/mail/inbound/raw/",
        data=raw,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "message/rfc822"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


async def test_a_posted_email_shows_live_in_a_thread_and_its_reply_reaches_the_sink(
    embedded: ServerProcess, sink: SmtpSink, mailbox: Mailbox, api_key: str, mint: Any
) -> None:
    import asyncio

    async with await RawPeer.connect(embedded.ws_url("support"), mint("alice", room="support")) as alice:
        answer = await asyncio.to_thread(post_raw, embedded, api_key, fixture_bytes("html_only.eml"))
        [message] = answer["messages"]
        created = await alice.notification("threads.created", timeout=30)
        assert created["thread"]["title"] == "Password reset" and created["thread_id"] == message["thread_id"]
        email = await alice.notification("threads.message", timeout=30)
        assert email["message"]["author"]["identity"] == "mail:dave@example.com"
        assert "reset link (https://example.com/reset) expired" in email["message"]["parts"][0]["text"]
        reply = await alice.expect(
            lambda m: (
                m.get("method") == "threads.message" and m["params"]["message"]["author"]["identity"] == "support-bot"
            ),
            timeout=60,
        )
        assert reply["params"]["message"]["parts"][0]["text"].startswith("Echo: I still can't log in")
    [received] = await asyncio.to_thread(sink.wait_for, 1, 60)
    assert received.message["Subject"] == "Re: Password reset"
    assert received.message["In-Reply-To"] == "<html-only-5@example.com>"
    assert received.message["References"].split() == [
        "<root-0@example.com>",
        "<earlier-1@example.test>",
        "<html-only-5@example.com>",
    ]
