"""The MailWorker on a real Celery worker process (Redis broker, Postgres or the SQLite test
database): the reply reaches the SMTP sink; a worker killed while the agent composes does not lose
the message, and the message is still answered once."""

from collections.abc import Iterator
from typing import Any

import pytest

from mail.models import InboundMessage, Mailbox, OutboundMessage
from mail.sink import SmtpSink
from tests.conftest import wait_until_everyone_left
from tests.support.celery_worker import StartCeleryWorker
from tests.support.servers import free_port

from .conftest import PostRaw, fixture_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.timeout(300)]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink(port=free_port()) as running:
        yield running
    wait_until_everyone_left()  # the server records the MailWorkers' leaving before the flush


def worker_env(sink: SmtpSink, **more: str) -> dict[str, str]:
    return {
        "MESHSITE_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        **more,
    }


def test_a_celery_worker_answers_the_mail(
    mailbox: Mailbox, post_raw: PostRaw, sink: SmtpSink, start_celery_worker: StartCeleryWorker
) -> None:
    start_celery_worker(env=worker_env(sink))
    assert post_raw(fixture_bytes("gb2312_base64.eml")).status_code == 200
    [received] = sink.wait_for(1, timeout=120)
    reply = received.message
    assert reply["Subject"] == "Re: 订单问题"
    assert reply["In-Reply-To"] == "<gb-2312-9@example.cn>"
    assert reply.get_body(("plain",)).get_content().startswith("Echo: 你好")  # type: ignore[union-attr]
    assert received.rcpt_tos == ["wang@example.cn"]


def test_a_killed_worker_loses_no_mail_and_answers_once(
    mailbox: Mailbox, post_raw: PostRaw, sink: SmtpSink, start_celery_worker: StartCeleryWorker, mail_service: Any
) -> None:
    import time

    mail_service.class_path = "tests.mail.agents.SlowMailWorker"
    mail_service.save()
    env = worker_env(sink, MESHSITE_MAIL_PROCESS_SECONDS="3", MESHSITE_MAIL_SWEEP_SECONDS="0.5")
    first = start_celery_worker(env=env)
    post_raw(fixture_bytes("multipart_alternative.eml"))
    # the room's indexer (vectors) indexes the stored .eml on the same workers: allow for it
    deadline = time.monotonic() + 120
    while InboundMessage.objects.get().status != "processing":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    first.kill()  # while the agent composes
    assert sink.messages == []
    start_celery_worker(env=env)
    [received] = sink.wait_for(1, timeout=120)
    assert received.message["In-Reply-To"] == "<CAF=alt1+x9Q@mail.gmail.com>"
    time.sleep(2)  # a duplicate would arrive meanwhile
    assert len(sink.messages) == 1 and OutboundMessage.objects.count() == 1
    inbound = InboundMessage.objects.get()
    assert inbound.status == "replied" and inbound.attempts == 2
