"""Text out of files: plain text, Markdown, HTML, PDF and email (bodies and attachments).

`extract(data, path, content_type)` picks the reader by content type, then by file extension.
Email (`.eml`, message/rfc822) yields its headers, its text bodies (HTML bodies when there is no
plain one) and the text of each attachment it can read, each under a heading naming it.
`Unsupported` means the file holds nothing the Indexer can read (an image, an archive).
"""

import io
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any

TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown", "text/csv", "application/json", "text/x-rst"}
HTML_TYPES = {"text/html", "application/xhtml+xml"}
PDF_TYPES = {"application/pdf"}
EMAIL_TYPES = {"message/rfc822"}
EXTENSIONS = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".rst": "text/x-rst",
    ".csv": "text/csv",
    ".json": "application/json",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".eml": "message/rfc822",
}


class Unsupported(Exception):
    """Nothing readable in this file (its type, or no text in it)."""


@dataclass
class Extracted:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def kind_of(path: str, content_type: str) -> str:
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type in TEXT_TYPES | HTML_TYPES | PDF_TYPES | EMAIL_TYPES:
        return content_type
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if content_type.startswith("text/"):
        return "text/plain"
    guessed, _ = mimetypes.guess_type(path)
    return guessed or content_type or "application/octet-stream"


def decode(data: bytes, charset: str | None = None) -> str:
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (LookupError, UnicodeDecodeError):
                continue
    return data.decode("latin-1")


class _TextOfHtml(HTMLParser):
    SKIP = {"script", "style", "template", "noscript", "head"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> Extracted:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    metadata = {"title": parser.title.strip()} if parser.title.strip() else {}
    return Extracted("".join(parser.parts), metadata)


def pdf_text(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as error:
        raise Unsupported(f"unreadable PDF: {error}") from error
    # pages are paragraphs of their own: a chunk boundary may fall between them
    metadata: dict[str, Any] = {"pages": len(pages)}
    title = reader.metadata.title if reader.metadata else None
    if title:
        metadata["title"] = str(title)
    return Extracted("\n\n".join(pages), metadata)


def email_text(data: bytes) -> Extracted:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    headers = [f"{name}: {message[name]}" for name in ("Subject", "From", "To", "Date") if message[name]]
    sections = ["\n".join(headers)]
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        sections.append(html_text(content).text if body.get_content_type() == "text/html" else content)
    attachments: list[str] = []
    for part in message.iter_attachments():
        name = part.get_filename() or "attachment"
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        try:
            inner = extract(payload, name, part.get_content_type(), charset=part.get_content_charset())
        except Unsupported:
            continue
        attachments.append(name)
        sections.append(f"Attachment: {name}\n\n{inner.text}")
    metadata: dict[str, Any] = {"subject": str(message["Subject"] or "")}
    if attachments:
        metadata["attachments"] = attachments
    return Extracted("\n\n".join(section for section in sections if section.strip()), metadata)


READERS: dict[str, Callable[[bytes, str | None], Extracted]] = {
    **{t: (lambda data, charset: Extracted(decode(data, charset))) for t in TEXT_TYPES},
    **{t: (lambda data, charset: html_text(decode(data, charset))) for t in HTML_TYPES},
    **{t: (lambda data, charset: pdf_text(data)) for t in PDF_TYPES},
    **{t: (lambda data, charset: email_text(data)) for t in EMAIL_TYPES},
}


def extract(data: bytes, path: str, content_type: str = "", *, charset: str | None = None) -> Extracted:
    kind = kind_of(path, content_type)
    reader = READERS.get(kind)
    if reader is None:
        raise Unsupported(f"cannot read {kind} files")
    extracted = reader(data, charset)
    if not extracted.text.strip():
        raise Unsupported("no text in this file")
    extracted.metadata.setdefault("content_type", kind)
    return extracted
