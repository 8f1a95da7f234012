"""Receiving raw MIME: routing by address and plus-address, storage of the message and its
attachments, the conversation's thread, idempotency by Message-ID, limits and credentials."""

from typing import Any

import pytest
from django.test import override_settings

from files.models import StoredFile
from files.selectors import get_file, open_file
from mail.models import InboundMessage, Mailbox, MailThreadLink
from rooms.models import Room
from threads.models import Thread, ThreadMessage

from .conftest import PostRaw, fixture_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_stores_the_message_and_its_attachments_and_opens_a_thread(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    response = post_raw(fixture_bytes("nested_attachments.eml"))
    assert response.status_code == 200, response.content
    [answer] = response.json()["messages"]
    assert answer["status"] == "queued" and answer["duplicate"] is False and answer["room"] == "support"
    inbound = InboundMessage.objects.get()
    assert inbound.message_key == "<20261130090211.12345@example.org>"
    assert inbound.sender == "bob@example.org" and inbound.recipient == "support@example.test"
    assert [a["name"] for a in inbound.attachments] == ["contract signed.pdf", "plan.png"]
    eml = get_file(mailbox.room, inbound.eml_path)
    assert eml.content_type == "message/rfc822" and inbound.eml_path.endswith("/message.eml")
    with open_file(eml) as handle:
        assert handle.read() == fixture_bytes("nested_attachments.eml")
    pdf = get_file(mailbox.room, inbound.attachments[0]["path"])
    with open_file(pdf) as handle:
        assert handle.read().startswith(b"%PDF-1.4")
    assert pdf.content_type == "application/pdf" and pdf.written_by == "support-bot"
    thread = Thread.objects.get()
    assert thread.title == "Site photo and the signed contract" and thread.room == mailbox.room
    [message] = ThreadMessage.objects.filter(thread=thread)
    assert message.author_identity == "mail:bob@example.org" and message.author_name == "Bob Builder"
    assert message.parts[0]["text"].startswith("Email from Bob Builder <bob@example.org>\nSubject: Site photo")
    assert [p["path"] for p in message.parts[1:]] == [inbound.eml_path, *[a["path"] for a in inbound.attachments]]
    assert MailThreadLink.objects.get().message_id == inbound.message_key
    assert enqueued == [("mail.process_inbound", inbound.pk)]


def test_a_webhook_delivered_twice_is_stored_once_and_answered_once(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    first = post_raw(fixture_bytes("multipart_alternative.eml")).json()["messages"][0]
    again = post_raw(fixture_bytes("multipart_alternative.eml")).json()["messages"][0]
    assert again["id"] == first["id"] and again["duplicate"] is True
    assert InboundMessage.objects.count() == 1 and ThreadMessage.objects.count() == 1
    assert len(enqueued) == 1


def test_a_message_without_message_id_is_deduplicated_by_its_derived_key(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    first = post_raw(fixture_bytes("no_message_id.eml")).json()["messages"][0]
    again = post_raw(fixture_bytes("no_message_id.eml")).json()["messages"][0]
    assert first["message_id"].startswith("sha256:") and again["duplicate"] is True
    assert len(enqueued) == 1


def test_plus_addressing_routes_to_another_room_created_on_first_use(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    raw = fixture_bytes("multipart_alternative.eml").replace(
        b"To: support@example.test", b"To: support+billing@example.test"
    )
    answer = post_raw(raw).json()["messages"][0]
    assert answer["room"] == "billing"
    assert Room.objects.filter(project=mailbox.room.project, name="billing").exists()
    assert InboundMessage.objects.get().recipient == "support+billing@example.test"


def test_a_plus_tag_that_is_no_room_name_is_not_routed(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    raw = fixture_bytes("multipart_alternative.eml").replace(
        b"To: support@example.test", b"To: support+Bad_Room@example.test"
    )
    response = post_raw(raw)
    assert response.status_code == 404
    assert "no mailbox here receives mail for support+bad_room@example.test" in response.json()["error"]["message"]


def test_a_reply_joins_the_thread_of_its_conversation(mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]) -> None:
    post_raw(fixture_bytes("multipart_alternative.eml"))
    follow_up = (
        b"From: Alice Example <alice@example.com>\r\nTo: support@example.test\r\n"
        b"Subject: Re: Question about my invoice\r\n"
        b"Message-ID: <followup-2@mail.gmail.com>\r\nIn-Reply-To: <CAF=alt1+x9Q@mail.gmail.com>\r\n"
        b"References: <CAF=alt1+x9Q@mail.gmail.com>\r\n\r\nAnd one more thing.\r\n"
    )
    post_raw(follow_up)
    assert Thread.objects.count() == 1
    assert ThreadMessage.objects.count() == 2


def test_an_oversized_message_is_refused_with_413_and_nothing_is_stored(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    with override_settings(MESHSITE_MAIL_MAX_BYTES=4096):
        raw = fixture_bytes("multipart_alternative.eml") + b"x" * 5000
        response = post_raw(raw)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "type": "too_large",
        "message": "the message is over 4096 bytes (MESHSITE_MAIL_MAX_BYTES)",
    }
    assert not InboundMessage.objects.exists() and not StoredFile.objects.exists() and not Thread.objects.exists()
    assert enqueued == []


def test_it_refuses_a_missing_or_unknown_api_key(mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]) -> None:
    missing = post_raw(fixture_bytes("multipart_alternative.eml"), key="")
    unknown = post_raw(fixture_bytes("multipart_alternative.eml"), key="msk_notakey")
    assert (missing.status_code, unknown.status_code) == (401, 401)
    assert unknown.json()["error"]["message"] == "unknown or revoked API key"
    assert not InboundMessage.objects.exists()


def test_an_api_key_reaches_only_its_own_projects_mailboxes(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    from rooms.actions.projects import do_create_api_key, do_create_project

    _key, other_key = do_create_api_key(do_create_project("other", "Other"), "x")
    response = post_raw(fixture_bytes("multipart_alternative.eml"), key=other_key)
    assert response.status_code == 404
    assert not InboundMessage.objects.exists()


def test_to_names_the_recipient_when_the_headers_do_not(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any]
) -> None:
    raw = fixture_bytes("multipart_alternative.eml").replace(
        b"To: support@example.test", b"To: undisclosed-recipients:;"
    )
    assert post_raw(raw).status_code == 404
    assert post_raw(raw, to="support@example.test").json()["messages"][0]["status"] == "queued"


def test_a_message_over_the_room_storage_limit_is_413_and_leaves_nothing_behind(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], settings: Any
) -> None:
    from pathlib import Path

    blobs = Path(settings.MESHSITE_STORAGE_DIR)
    before = {p for p in blobs.rglob("*") if p.is_file()} if blobs.exists() else set()
    with override_settings(MESHSITE_STORAGE_MAX_BYTES=2000):  # under the mail limit, over the storage's
        response = post_raw(fixture_bytes("nested_attachments.eml"))
    assert response.status_code == 413, response.content
    assert response.json()["error"]["type"] == "too_large"
    assert not InboundMessage.objects.exists() and not StoredFile.objects.exists() and not Thread.objects.exists()
    after = {p for p in blobs.rglob("*") if p.is_file()} if blobs.exists() else set()
    assert after == before
    assert enqueued == []


def test_a_failing_attachment_write_removes_what_was_written_before_it(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from files.blobs import too_large
    from mail import storage

    real_write = storage.do_write_file
    writes: list[str] = []

    def third_write_fails(**kwargs: Any) -> Any:
        writes.append(kwargs["path"])
        if len(writes) == 3:
            raise too_large(100)
        return real_write(**kwargs)

    monkeypatch.setattr(storage, "do_write_file", third_write_fails)
    blobs = Path(settings.MESHSITE_STORAGE_DIR)
    before = {p for p in blobs.rglob("*") if p.is_file()} if blobs.exists() else set()
    response = post_raw(fixture_bytes("nested_attachments.eml"))
    assert response.status_code == 413
    assert len(writes) == 3  # the .eml and the PDF were written, then the PNG failed
    assert not StoredFile.objects.exists() and not InboundMessage.objects.exists()
    assert {p for p in blobs.rglob("*") if p.is_file()} == before
