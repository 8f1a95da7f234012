"""ESP inbound webhooks in their real payload formats (shapes from django-anymail's own tests and
the ESPs' documentation), through anymail's views: Mailgun (signed route forward, parsed fields
with attachments or raw MIME) and Postmark (JSON, basic auth), with bad credentials refused."""

import base64
import hashlib
import hmac
import json
from io import BytesIO
from typing import Any

import pytest
from django.test import Client, override_settings

from mail.models import InboundMessage, Mailbox
from threads.models import ThreadMessage

from .conftest import fixture_bytes

pytestmark = pytest.mark.django_db(transaction=True)

SIGNING_KEY = "key-0123456789abcdef0123456789abcdef"
BASIC = "mailhook:correct-horse-battery-staple"
ANYMAIL = {"WEBHOOK_SECRET": [BASIC], "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def mailgun_signed(data: dict[str, Any], key: str = SIGNING_KEY) -> dict[str, Any]:
    data.setdefault("timestamp", "1764490000")
    data.setdefault("token", "06c96bafc3f42a66b9edd546347a2fe18dc23461fe80dc52f0")
    message = f"{data['timestamp']}{data['token']}".encode()
    data["signature"] = hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    return data


def mailgun_parsed_payload() -> dict[str, Any]:
    pdf = BytesIO(b"%PDF-1.4\n%%EOF\n")
    pdf.name = "quote.pdf"
    return {
        "recipient": "support@example.test",
        "sender": "envelope-from@example.org",
        "from": "Displayed From <erin@example.org>",
        "subject": "Quote request",
        "message-headers": json.dumps(
            [
                ["X-Mailgun-Spf", "Pass"],
                ["X-Envelope-From", "<envelope-from@example.org>"],
                ["Received", "from mail.example.org by mxa.mailgun.org ..."],
                ["Mime-Version", "1.0"],
                ["From", '"Erin Example" <erin@example.org>'],
                ["Date", "Mon, 30 Nov 2026 09:31:04 +0100"],
                ["Message-Id", "<CAEPk3R+4Zr@mail.example.org>"],
                ["Subject", "Quote request"],
                ["To", '"Support" <support@example.test>'],
                ["Content-Type", 'multipart/mixed; boundary="089e0825ccf874a0bb055b4f7e23"'],
            ]
        ),
        "body-plain": "Please send me a quote for 40 chairs.",
        "body-html": "<div>Please send me a quote for 40 chairs.</div>",
        "stripped-text": "Please send me a quote for 40 chairs.",
        "attachment-count": "1",
        "attachment-1": pdf,
    }


@override_settings(ANYMAIL=ANYMAIL)
def test_mailgun_parsed_fields_with_an_attachment_are_stored(
    client: Client, mailbox: Mailbox, enqueued: list[Any]
) -> None:
    response = client.post(
        "/mail/inbound/mailgun/", data=mailgun_signed(mailgun_parsed_payload()), headers=basic(BASIC)
    )
    assert response.status_code == 200, response.content
    [answer] = response.json()["messages"]
    assert answer["status"] == "queued" and answer["message_id"] == "<CAEPk3R+4Zr@mail.example.org>"
    inbound = InboundMessage.objects.get()
    assert (inbound.esp, inbound.sender, inbound.sender_name) == ("mailgun", "erin@example.org", "Erin Example")
    assert inbound.text == "Please send me a quote for 40 chairs."
    assert [(a["name"], a["mime_type"], a["size"]) for a in inbound.attachments] == [
        ("quote.pdf", "application/pdf", 15)
    ]
    assert len(enqueued) == 1


@override_settings(ANYMAIL=ANYMAIL)
def test_mailgun_raw_mime_and_a_retried_delivery(client: Client, mailbox: Mailbox, enqueued: list[Any]) -> None:
    def payload() -> dict[str, Any]:
        return mailgun_signed(
            {
                "recipient": "support@example.test",
                "sender": "yamada@example.jp",
                "body-mime": fixture_bytes("shift_jis_base64.eml").decode("ascii"),
            }
        )

    first = client.post("/mail/inbound/mailgun/", data=payload(), headers=basic(BASIC)).json()["messages"][0]
    again = client.post("/mail/inbound/mailgun/", data=payload(), headers=basic(BASIC)).json()["messages"][0]
    assert first["status"] == "queued" and again["duplicate"] is True
    assert InboundMessage.objects.get().subject == "請求書について"
    assert ThreadMessage.objects.count() == 1 and len(enqueued) == 1


@override_settings(ANYMAIL=ANYMAIL)
def test_mailgun_with_a_bad_signature_is_refused(client: Client, mailbox: Mailbox, enqueued: list[Any]) -> None:
    forged = mailgun_signed(mailgun_parsed_payload(), key="key-not-the-right-one")
    response = client.post("/mail/inbound/mailgun/", data=forged, headers=basic(BASIC))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "type": "forbidden",
        "message": "Mailgun webhook called with incorrect signature",
    }
    assert not InboundMessage.objects.exists() and enqueued == []


@override_settings(ANYMAIL=ANYMAIL)
def test_mailgun_without_basic_auth_is_refused(client: Client, mailbox: Mailbox, enqueued: list[Any]) -> None:
    missing = client.post("/mail/inbound/mailgun/", data=mailgun_signed(mailgun_parsed_payload()))
    wrong = client.post(
        "/mail/inbound/mailgun/", data=mailgun_signed(mailgun_parsed_payload()), headers=basic("mailhook:guess")
    )
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == 'Basic realm="meshsite mail"'
    assert wrong.status_code == 403
    assert wrong.json()["error"]["message"] == "Missing or invalid basic auth in Anymail Mailgun webhook"
    assert not InboundMessage.objects.exists()


@override_settings(ANYMAIL={"WEBHOOK_SECRET": [BASIC]})
def test_mailgun_without_a_signing_key_configured_says_so(client: Client, mailbox: Mailbox) -> None:
    response = client.post(
        "/mail/inbound/mailgun/", data=mailgun_signed(mailgun_parsed_payload()), headers=basic(BASIC)
    )
    assert response.status_code == 503
    assert response.json()["error"]["message"].startswith("mailgun inbound mail is not configured here:")


def postmark_payload() -> dict[str, Any]:
    return {
        "FromName": "Frank",
        "From": "frank@example.org",
        "FromFull": {"Email": "frank@example.org", "Name": "Frank Example", "MailboxHash": ""},
        "To": "support+orders@example.test",
        "ToFull": [{"Email": "support+orders@example.test", "Name": "", "MailboxHash": "orders"}],
        "CcFull": [],
        "BccFull": [],
        "OriginalRecipient": "support+orders@example.test",
        "ReplyTo": "",
        "Subject": "Where is order 88?",
        "MessageID": "22c74902-a0c1-4511-804f2-341342852c90",
        "Date": "Mon, 30 Nov 2026 09:31:04 +0100",
        "MailboxHash": "orders",
        "TextBody": "",
        "HtmlBody": "<p>Where is my order <b>88</b>?</p>",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": "<frank@example.org>"},
            {"Name": "Received", "Value": "by mail.example.org for <support+orders@example.test> ..."},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<pm-88@mail.example.org>"},
        ],
        "Attachments": [
            {
                "Name": "receipt.png",
                "Content": base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode(),
                "ContentType": "image/png",
                "ContentLength": 12,
            }
        ],
    }


@override_settings(ANYMAIL=ANYMAIL)
def test_postmark_json_with_plus_addressing_and_html_only(
    client: Client, mailbox: Mailbox, enqueued: list[Any]
) -> None:
    response = client.post(
        "/mail/inbound/postmark/",
        data=json.dumps(postmark_payload()),
        content_type="application/json",
        headers=basic(BASIC),
    )
    assert response.status_code == 200, response.content
    [answer] = response.json()["messages"]
    assert answer["room"] == "orders" and answer["message_id"] == "<pm-88@mail.example.org>"
    inbound = InboundMessage.objects.get()
    assert inbound.text == "Where is my order 88?"
    assert inbound.esp == "postmark" and [a["name"] for a in inbound.attachments] == ["receipt.png"]


@override_settings(ANYMAIL=ANYMAIL)
def test_postmark_raw_email_payload(client: Client, mailbox: Mailbox, enqueued: list[Any]) -> None:
    payload = {
        **postmark_payload(),
        "RawEmail": fixture_bytes("gb2312_base64.eml").decode("ascii"),
        "OriginalRecipient": "support@example.test",
    }
    response = client.post(
        "/mail/inbound/postmark/", data=json.dumps(payload), content_type="application/json", headers=basic(BASIC)
    )
    assert response.status_code == 200, response.content
    assert InboundMessage.objects.get().text.splitlines()[1] == "我的订单还没有到。"


@override_settings(ANYMAIL=ANYMAIL)
def test_postmark_with_wrong_basic_auth_is_refused(client: Client, mailbox: Mailbox, enqueued: list[Any]) -> None:
    body = json.dumps(postmark_payload())
    missing = client.post("/mail/inbound/postmark/", data=body, content_type="application/json")
    wrong = client.post(
        "/mail/inbound/postmark/",
        data=body,
        content_type="application/json",
        headers=basic("mailhook:wrong-password-x"),
    )
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert not InboundMessage.objects.exists()


@override_settings(ANYMAIL={"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY})
def test_postmark_is_closed_until_basic_auth_is_configured(client: Client, mailbox: Mailbox) -> None:
    response = client.post(
        "/mail/inbound/postmark/", data=json.dumps(postmark_payload()), content_type="application/json"
    )
    assert response.status_code == 503
    assert "set ANYMAIL_WEBHOOK_SECRET" in response.json()["error"]["message"]


@override_settings(ANYMAIL=ANYMAIL, MESHSITE_MAIL_MAX_BYTES=2048)
def test_an_oversized_esp_message_is_refused_with_413(client: Client, mailbox: Mailbox, enqueued: list[Any]) -> None:
    payload = {**postmark_payload(), "TextBody": "x" * 3000, "HtmlBody": ""}
    response = client.post(
        "/mail/inbound/postmark/", data=json.dumps(payload), content_type="application/json", headers=basic(BASIC)
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "too_large"
    assert not InboundMessage.objects.exists() and enqueued == []


@override_settings(ANYMAIL=ANYMAIL)
def test_a_payload_of_the_wrong_shape_is_a_clear_400(client: Client, mailbox: Mailbox) -> None:
    response = client.post(
        "/mail/inbound/postmark/", data="[1, 2]", content_type="application/json", headers=basic(BASIC)
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_payload"
