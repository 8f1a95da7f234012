"""Loop and abuse safety, one rule per test: each refused message is acknowledged (200), kept for
the record as `ignored` with its reason, stores nothing and is never queued for a reply."""

from typing import Any

import pytest
from django.test import override_settings

from files.models import StoredFile
from mail.models import InboundMessage, Mailbox
from threads.models import Thread

from .conftest import PostRaw

pytestmark = pytest.mark.django_db(transaction=True)

_counter = iter(range(1, 10_000))


def email(*headers: str, sender: str = "Alice <alice@example.com>", body: str = "Hello") -> bytes:
    lines = [
        f"From: {sender}",
        "To: support@example.test",
        "Subject: Hello",
        f"Message-ID: <m{next(_counter)}@example.com>",
        *headers,
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def ignored_reason(post_raw: PostRaw, raw: bytes, enqueued: list[Any]) -> str:
    before = (len(enqueued), StoredFile.objects.count(), Thread.objects.count())
    response = post_raw(raw)
    assert response.status_code == 200, response.content
    [answer] = response.json()["messages"]
    assert answer["status"] == "ignored"
    assert (len(enqueued), StoredFile.objects.count(), Thread.objects.count()) == before
    assert InboundMessage.objects.get(pk=answer["id"]).text == ""
    return str(answer["reason"])


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        (["Return-Path: <>"], "Mail Delivery System <mailer-daemon@example.com>", "a bounce (null Return-Path <>)"),
        ([], "Mail Delivery Subsystem <MAILER-DAEMON@example.com>", "a bounce (from MAILER-DAEMON)"),
        ([], "postmaster@example.com", "a bounce (from postmaster)"),
    ],
)
def test_it_never_answers_a_bounce(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], headers: list[str], sender: str, reason: str
) -> None:
    assert ignored_reason(post_raw, email(*headers, sender=sender), enqueued) == reason


def test_it_never_answers_a_delivery_status_notification(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    dsn = (
        b"From: Alice <alice@example.com>\r\nTo: support@example.test\r\nSubject: Undelivered\r\n"
        b"Message-ID: <dsn-1@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        b"Final-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    )
    assert ignored_reason(post_raw, dsn, enqueued) == "a delivery or read report (multipart/report)"


def test_it_never_answers_a_null_envelope_sender_from_the_esp(mailbox: Mailbox) -> None:
    """ESP webhooks give the SMTP envelope sender; `<>` is a bounce whatever the From says."""
    from mail.actions import do_receive_mail
    from mail.parsing import normalise, parse_raw

    message = parse_raw(email())
    message.envelope_sender = ""
    received = do_receive_mail(normalise(message), esp="mailgun")
    assert received.inbound.reason == "a bounce (null envelope sender <>)"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "an automatic message (Auto-Submitted: auto-replied)"),
        ("Auto-Submitted: auto-generated", "an automatic message (Auto-Submitted: auto-generated)"),
        ("Precedence: bulk", "bulk or automatic mail (Precedence: bulk)"),
        ("Precedence: junk", "bulk or automatic mail (Precedence: junk)"),
        ("Precedence: list", "bulk or automatic mail (Precedence: list)"),
        ("X-Autoreply: yes", "an automatic reply (X-Autoreply)"),
        ("X-Autorespond: Out of office", "an automatic reply (X-Autorespond)"),
        ("X-Auto-Response-Suppress: All", "its sender asks for no automatic replies (X-Auto-Response-Suppress)"),
    ],
)
def test_it_never_answers_an_automatic_reply(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], header: str, reason: str
) -> None:
    assert ignored_reason(post_raw, email(header), enqueued) == reason


def test_auto_submitted_no_is_a_person_writing(mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]) -> None:
    assert post_raw(email("Auto-Submitted: no")).json()["messages"][0]["status"] == "queued"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("List-Id: <announce.lists.example.com>", "mailing-list mail (List-Id)"),
        ("List-Unsubscribe: <mailto:unsubscribe@example.com>", "mailing-list mail (List-Unsubscribe)"),
    ],
)
def test_it_never_answers_a_mailing_list(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], header: str, reason: str
) -> None:
    assert ignored_reason(post_raw, email(header), enqueued) == reason


@pytest.mark.parametrize("sender", ["support@example.test", "Bot <support+billing@example.test>"])
def test_it_never_answers_itself(mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], sender: str) -> None:
    assert (
        ignored_reason(post_raw, email(sender=sender), enqueued) == "it comes from one of this server's own mailboxes"
    )


def test_a_closed_mailbox_answers_only_allowed_senders(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    mailbox.open = False
    mailbox.allowed_senders = "bob@example.org\n@example.com\n"
    mailbox.save()
    assert post_raw(email(sender="alice@example.com")).json()["messages"][0]["status"] == "queued"
    assert post_raw(email(sender="bob@example.org")).json()["messages"][0]["status"] == "queued"
    reason = ignored_reason(post_raw, email(sender="mallory@evil.example"), enqueued)
    assert reason == "mallory@evil.example is not an allowed sender of this mailbox"


def test_a_sender_over_the_hourly_rate_is_refused(mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]) -> None:
    mailbox.rate_per_hour = 3
    mailbox.save()
    statuses = [post_raw(email()).json()["messages"][0]["status"] for _ in range(3)]
    assert statuses == ["queued"] * 3
    response = post_raw(email()).json()["messages"][0]
    assert response["status"] == "ignored"
    assert response["reason"] == (
        "rate limited: alice@example.com sent 3 messages to this mailbox in the last hour (limit 3)"
    )
    # others are not limited by alice's flood
    assert post_raw(email(sender="carol@example.com")).json()["messages"][0]["status"] == "queued"


def test_the_server_wide_rate_applies_when_the_mailbox_sets_none(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    with override_settings(MESHSITE_MAIL_RATE_PER_HOUR=1):
        assert post_raw(email()).json()["messages"][0]["status"] == "queued"
        assert post_raw(email()).json()["messages"][0]["status"] == "ignored"
