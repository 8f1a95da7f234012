"""The reply, end to end on the embedded default's wiring (tasks in-process, eager): raw MIME is
posted, the MailWorker joins the room on a real server process over the WebSocket, composes the
reply, and the reply goes through Django's SMTP backend to a local SMTP server (aiosmtpd), where
the test reads it back: threading headers, subject, body and attachment; the thread Studio shows
and the ledger's priced `email` usage."""

import importlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from mail.models import InboundMessage, Mailbox, OutboundMessage
from mail.sink import SmtpSink
from mail.tasks import process_inbound
from meshsite.celery import app
from observability.models import UsageRecord
from observability.tasks import wait_for_background_tasks
from tests.conftest import wait_until_everyone_left
from tests.support.fake_openai import FakeOpenAI, ToolCall, fake_openai
from tests.support.servers import ServerProcess, free_port
from threads.models import ThreadMessage

from .conftest import PostRaw, fixture_bytes

__all__ = ["fake_openai"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink(port=free_port()) as running:
        yield running


@pytest.fixture
def wired(server: ServerProcess, sink: SmtpSink) -> Iterator[SmtpSink]:
    """Replies go to the sink over SMTP; MailWorkers join the session's server; tasks run
    in-process (the embedded default), whatever broker this run has."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=sink.port,
        MESHSITE_WORKER_URL=server.http_url,
    ):
        yield sink
    # before the database is flushed: the tasks (and the indexing of stored mail) finish, and the
    # server has recorded that the MailWorkers left (a TRUNCATE would deadlock with those writes)
    wait_for_background_tasks(120)
    app.conf.task_always_eager = eager
    wait_until_everyone_left()


def seed_email_price() -> None:
    from django.apps import apps

    importlib.import_module("mail.migrations.0002_seed_email_price").seed(apps, None)


def settle() -> None:
    assert wait_for_background_tasks(60), "the mail task did not finish"


def test_the_reply_is_threaded_attached_posted_to_the_thread_and_priced(
    mailbox: Mailbox, post_raw: PostRaw, wired: SmtpSink
) -> None:
    seed_email_price()  # the seed migration's row; transactional tests flush the database between tests
    assert post_raw(fixture_bytes("nested_attachments.eml")).status_code == 200
    settle()
    [received] = wired.wait_for(1)
    reply = received.message
    outbound = OutboundMessage.objects.get()
    assert received.rcpt_tos == ["bob@example.org"]
    assert reply["From"] == "Support bot <support@example.test>"
    assert reply["To"] == "bob@example.org"
    assert reply["Subject"] == "Re: Site photo and the signed contract"
    assert reply["Message-ID"] == outbound.message_id and outbound.message_id.endswith("@example.test>")
    assert reply["In-Reply-To"] == "<20261130090211.12345@example.org>"
    assert reply["References"] == "<20261130090211.12345@example.org>"
    assert reply["Auto-Submitted"] == "auto-replied"
    body = reply.get_body(("plain",))
    assert body is not None
    assert body.get_content().splitlines() == [
        "Echo: Here is the photo of the site and the signed contract.",
        "Room: support",
        "Participants seen: 1",
    ]
    [attachment] = list(reply.iter_attachments())
    assert attachment.get_filename() == "1-contract signed.pdf"
    assert attachment.get_content().startswith(b"%PDF-1.4")

    inbound = InboundMessage.objects.get()
    assert inbound.status == "replied" and inbound.attempts == 1
    first, answer = ThreadMessage.objects.filter(thread_id=inbound.thread_id).order_by("seq")
    assert first.author_identity == "mail:bob@example.org"
    assert (answer.author_identity, answer.author_role, answer.author_name) == ("support-bot", "agent", "Support bot")
    assert answer.author_participant_id != ""  # the participant it was while in the room
    assert answer.parts[0]["text"].startswith("Echo: Here is the photo")
    assert answer.parts[1] == {"type": "attachment", "path": inbound.attachments[0]["path"]}

    usage = UsageRecord.objects.get(kind="email")
    assert (usage.model, usage.quantity, usage.cost, usage.priced) == ("smtp", 1, Decimal("0.001"), True)
    assert (usage.identity, usage.agent, usage.thread_id, usage.room_id) == (
        "support-bot",
        "support-bot",
        inbound.thread_id,
        inbound.room_id,
    )
    assert outbound.usage_id == usage.pk and outbound.status == "sent"


def test_an_answer_to_the_reply_continues_the_thread_and_the_references(
    mailbox: Mailbox, post_raw: PostRaw, wired: SmtpSink
) -> None:
    post_raw(fixture_bytes("multipart_alternative.eml"))
    settle()
    first_reply = wired.wait_for(1)[0].message
    answer = (
        "From: Alice Example <alice@example.com>\r\nTo: Support bot <support@example.test>\r\n"
        f"Subject: {first_reply['Subject'].replace('Re:', 'RE: Re:')}\r\nMessage-ID: <second-2@mail.gmail.com>\r\n"
        f"In-Reply-To: {first_reply['Message-ID']}\r\n"
        f"References: <CAF=alt1+x9Q@mail.gmail.com> {first_reply['Message-ID']}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nThanks, and what about #4712?\r\n"
    ).encode()
    post_raw(answer)
    settle()
    second_reply = wired.wait_for(2)[1].message
    assert second_reply["Subject"] == "Re: Question about my invoice"
    assert second_reply["In-Reply-To"] == "<second-2@mail.gmail.com>"
    assert second_reply["References"].split() == [
        "<CAF=alt1+x9Q@mail.gmail.com>",
        first_reply["Message-ID"],
        "<second-2@mail.gmail.com>",
    ]
    threads = set(InboundMessage.objects.values_list("thread_id", flat=True))
    assert len(threads) == 1
    assert ThreadMessage.objects.filter(thread_id=threads.pop()).count() == 4


def test_a_retried_webhook_or_a_repeated_task_never_sends_a_second_reply(
    mailbox: Mailbox, post_raw: PostRaw, wired: SmtpSink
) -> None:
    post_raw(fixture_bytes("iso_8859_1_qp.eml"))
    settle()
    wired.wait_for(1)
    assert post_raw(fixture_bytes("iso_8859_1_qp.eml")).json()["messages"][0]["duplicate"] is True
    process_inbound.apply((InboundMessage.objects.get().pk,), throw=True)  # a redelivered task
    settle()
    assert len(wired.messages) == 1 and OutboundMessage.objects.count() == 1
    assert UsageRecord.objects.filter(kind="email").count() == 1
    reply = wired.messages[0].message
    assert reply["Subject"] == "Re: Lieferung für Straße 5"
    assert reply.get_body(("plain",)).get_content().startswith("Echo: Grüße aus Köln!")  # type: ignore[union-attr]


def test_a_composed_reply_is_sent_by_the_next_attempt_without_asking_the_agent_again(
    mailbox: Mailbox, post_raw: PostRaw, wired: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mail server was down when the reply was first sent: the retry sends the recorded one."""
    import smtplib

    calls: list[int] = []

    def down_once(self: Any, messages: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return original(self, messages)

    from django.core.mail.backends.smtp import EmailBackend

    original = EmailBackend.send_messages
    monkeypatch.setattr(EmailBackend, "send_messages", down_once)
    post_raw(fixture_bytes("multipart_alternative.eml"))
    settle()
    [received] = wired.wait_for(1)  # the retry, 2 s later (a timer, so not awaited by settle())
    settle()
    inbound = InboundMessage.objects.get()
    assert len(calls) == 2 and inbound.status == "replied" and inbound.attempts == 2
    assert received.message["Message-ID"] == OutboundMessage.objects.get().message_id
    assert ThreadMessage.objects.filter(thread_id=inbound.thread_id).count() == 2  # the reply posted once


def test_a_mailworker_may_choose_not_to_reply(project: Any, post_raw: PostRaw, wired: SmtpSink) -> None:
    from agents.actions import do_create_service
    from rooms.actions.rooms import do_create_room

    service = do_create_service(project, "quiet", class_path="tests.mail.agents.SilentMailWorker")
    Mailbox.objects.create(
        service=service, address="support@example.test", room=do_create_room(project, "x"), open=True
    )
    post_raw(fixture_bytes("multipart_alternative.eml"))
    settle()
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.reason) == ("ignored", "its MailWorker chose not to reply")
    assert wired.messages == [] and not OutboundMessage.objects.exists()


def test_the_default_mailworker_answers_with_the_model_and_the_rooms_tools(
    project: Any, post_raw: PostRaw, wired: SmtpSink, fake_openai: FakeOpenAI
) -> None:
    from agents.actions import do_create_service
    from rooms.actions.rooms import do_create_room

    service = do_create_service(
        project,
        "helpdesk",
        class_path="meshsite_client.agents.mail_worker.MailWorker",
        config={
            "base_url": fake_openai.base_url,
            "api_key": "sk-fake",
            "tool_toolkits": ["participants"],
            "rules": ["Be kind."],
        },
    )
    Mailbox.objects.create(
        service=service, address="help@example.test", room=do_create_room(project, "helpdesk"), open=True
    )
    fake_openai.reply(tool_calls=[ToolCall("participants__list", {})])
    fake_openai.reply("Dear Alice, the invoice was corrected to €100.")
    raw = fixture_bytes("multipart_alternative.eml").replace(b"To: support@example.test", b"To: help@example.test")
    post_raw(raw)
    settle()
    [received] = wired.wait_for(1)
    assert received.message.get_body(("plain",)).get_content().strip() == (  # type: ignore[union-attr]
        "Dear Alice, the invoice was corrected to €100."
    )
    first, second = fake_openai.requests
    assert "Be kind." in first.messages[0]["content"]
    assert "shows €120 instead of €100" in first.messages[-1]["content"]
    assert first.messages[-1]["role"] == "user"
    assert "participants__list" in [t["function"]["name"] for t in first.tools]
    assert second.messages[-1]["role"] == "tool" and "helpdesk" in second.messages[-1]["content"]
    assert UsageRecord.objects.filter(kind="llm", agent="helpdesk").count() == 2
