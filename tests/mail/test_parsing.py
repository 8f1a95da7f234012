"""Real-world MIME normalised: charsets, transfer encodings, nested multiparts, attachments."""

from mail.parsing import normalise, parse_raw
from mail.subjects import reply_subject, thread_title

from .conftest import fixture_bytes


def parsed(name: str):  # type: ignore[no-untyped-def]
    raw = fixture_bytes(name)
    return normalise(parse_raw(raw), raw=raw)


def test_it_reads_the_plain_part_of_multipart_alternative_quoted_printable() -> None:
    mail = parsed("multipart_alternative.eml")
    assert mail.message_id == "<CAF=alt1+x9Q@mail.gmail.com>"
    assert mail.sender == "alice@example.com" and mail.sender_name == "Alice Example"
    assert "shows €120 instead of €100? The café order" in mail.text
    assert "<p>" not in mail.text
    assert mail.recipients == ["support@example.test"]
    assert mail.attachments == []


def test_it_finds_attachments_in_nested_multiparts() -> None:
    mail = parsed("nested_attachments.eml")
    assert mail.text.startswith("Here is the photo of the site and the signed contract.")
    names = [(a.name, a.mime_type) for a in mail.attachments]
    assert names == [("contract signed.pdf", "application/pdf"), ("plan.png", "image/png")]
    pdf = mail.attachments[0].content
    assert pdf.startswith(b"%PDF-1.4") and pdf.endswith(b"%%EOF\n")
    assert mail.attachments[1].content.startswith(b"\x89PNG\r\n\x1a\n")


def test_it_keeps_a_forwarded_eml_as_an_attachment() -> None:
    mail = parsed("forwarded_eml.eml")
    assert mail.text == "Please see the message below, what should I answer?"
    [inner] = mail.attachments
    assert inner.name == "Delivery delayed.eml" and inner.mime_type == "message/rfc822"
    forwarded = parse_raw(inner.content)
    assert forwarded["Message-ID"] == "<order-1234@shop.example>"
    assert "two days late" in (forwarded.text or "")


def test_it_decodes_iso_8859_1_quoted_printable_and_encoded_words() -> None:
    mail = parsed("iso_8859_1_qp.eml")
    assert mail.subject == "Lieferung für Straße 5"
    assert mail.sender_name == "Jürgen Müller"
    assert mail.text.startswith("Grüße aus Köln! Die Lieferung für Straße 5")


def test_it_decodes_shift_jis_base64() -> None:
    mail = parsed("shift_jis_base64.eml")
    assert mail.subject == "請求書について"
    assert mail.sender_name == "山田太郎"
    assert mail.text.splitlines() == ["お世話になっております。", "請求書について質問があります。", "山田"]


def test_it_decodes_gb2312_base64() -> None:
    mail = parsed("gb2312_base64.eml")
    assert mail.subject == "订单问题"
    assert mail.text.splitlines() == ["你好\uff0c", "我的订单还没有到。", "王伟"]


def test_it_converts_html_only_mail_to_text() -> None:
    mail = parsed("html_only.eml")
    assert mail.text.splitlines() == [
        "I still can't log in & the reset link (https://example.com/reset) expired. Ça va?",
        "",
        "- Tried Chrome",
        "- Tried Firefox",
    ]
    assert mail.in_reply_to == ["<earlier-1@example.test>"]
    assert mail.references == ["<root-0@example.com>", "<earlier-1@example.test>"]


def test_a_message_without_message_id_gets_a_stable_derived_key() -> None:
    first, second = parsed("no_message_id.eml"), parsed("no_message_id.eml")
    assert first.message_id == ""
    assert first.message_key.startswith("sha256:") and first.message_key == second.message_key
    other = fixture_bytes("no_message_id.eml").replace(b"All jobs ran.", b"Two jobs failed.")
    assert normalise(parse_raw(other), raw=other).message_key != first.message_key


def test_a_resent_message_keeps_its_derived_key_whatever_the_trace_headers() -> None:
    raw = fixture_bytes("no_message_id.eml")
    relayed = b"Received: from relay.example.net by mx.example.test; Mon, 30 Nov 2026 03:00:05 +0000\r\n" + raw
    assert normalise(parse_raw(relayed), raw=relayed).message_key == parsed("no_message_id.eml").message_key


def test_reply_subjects_never_stack_prefixes() -> None:
    assert reply_subject("Password reset") == "Re: Password reset"
    assert reply_subject("Re: RE: Re: Password reset") == "Re: Password reset"
    assert reply_subject("AW: Re[2]: Rechnung") == "Re: Rechnung"
    assert reply_subject("") == "Re: (no subject)"
    assert thread_title("Re: Re: Password reset") == "Password reset"
