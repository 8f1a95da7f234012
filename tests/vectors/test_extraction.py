"""Text out of plain text, Markdown, HTML, PDF and email (with attachments)."""

import pytest

from tests.vectors.documents import make_email, make_pdf
from vectors.extraction import Unsupported, extract


def test_it_reads_plain_text_and_markdown_as_they_are():
    assert extract(b"Hello\n\nworld", "notes.txt").text == "Hello\n\nworld"
    assert "# Title" in extract("# Title\n\nCaf\u00e9".encode(), "README.md").text
    assert extract(b"plain", "no-extension", "text/plain; charset=utf-8").text == "plain"


def test_it_reads_html_text_without_scripts_styles_or_tags():
    html = b"<html><head><title>Menu</title><style>p{}</style></head><body><h1>Soup</h1><p>Tomato &amp; basil</p>"
    html += b"<script>alert('x')</script></body></html>"
    extracted = extract(html, "menu.html")
    assert "Soup" in extracted.text and "Tomato & basil" in extracted.text
    assert "alert" not in extracted.text and "p{}" not in extracted.text and "<" not in extracted.text
    assert extracted.metadata["title"] == "Menu"


def test_it_reads_the_text_layer_of_a_pdf():
    pdf = make_pdf(["The warranty lasts 24 months.", "Returns (within 30 days) are free."], title="Policy")
    extracted = extract(pdf, "docs/policy.pdf", "application/pdf")
    assert "The warranty lasts 24 months." in extracted.text
    assert "Returns (within 30 days) are free." in extracted.text
    assert extracted.metadata["pages"] == 1 and extracted.metadata["title"] == "Policy"


def test_it_reads_an_email_body_and_its_attachments():
    eml = make_email(
        "Quote 1142",
        "Hello, the quote is attached.",
        [
            ("quote.pdf", "application/pdf", make_pdf(["Forty widgets at 3 euros each."])),
            ("terms.txt", "text/plain", b"Payment within 14 days."),
            ("logo.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ],
    )
    extracted = extract(eml, "mail/inbox/1142.eml")
    assert "Subject: Quote 1142" in extracted.text and "dana@supplier.example" in extracted.text
    assert "the quote is attached" in extracted.text
    assert "Attachment: quote.pdf" in extracted.text and "Forty widgets at 3 euros each." in extracted.text
    assert "Payment within 14 days." in extracted.text
    assert extracted.metadata["attachments"] == ["quote.pdf", "terms.txt"]  # the image has no text


def test_it_refuses_what_it_cannot_read():
    with pytest.raises(Unsupported):
        extract(b"\x89PNG\r\n\x1a\n", "logo.png", "image/png")
    with pytest.raises(Unsupported):
        extract(b"   \n ", "empty.txt")
    with pytest.raises(Unsupported):
        extract(b"%PDF-1.4 garbage", "broken.pdf")
