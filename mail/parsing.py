"""Normalising an inbound message: whatever the webhook (an ESP's parsed fields or raw MIME), one
`ParsedMail` with decoded text (any charset; HTML-only mail converted to text), the attachments as
bytes (a forwarded `.eml` included) and the headers loop safety and threading need."""

import hashlib
import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from anymail.inbound import AnymailInboundMessage  # type: ignore[import-untyped]

from .html_text import html_to_text

MAX_KEY = 255
MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")


@dataclass
class Attachment:
    name: str
    mime_type: str
    content: bytes


@dataclass
class ParsedMail:
    raw: bytes
    message_key: str
    message_id: str  # as sent, with its <>; empty when the message has none
    sender: str  # the From address, lower-case ("" when missing or unparsable)
    sender_name: str
    envelope_sender: str | None  # the SMTP MAIL FROM / Return-Path when the webhook gives it
    reply_to: str
    recipients: list[str]  # envelope recipient first, then To, Cc, Delivered-To (lower-case)
    subject: str
    text: str
    in_reply_to: list[str]
    references: list[str]
    attachments: list[Attachment] = field(default_factory=list)
    message: Message | None = None


def parse_raw(raw: bytes) -> AnymailInboundMessage:
    return AnymailInboundMessage.parse_raw_mime_bytes(raw)


def _header(message: Message, name: str) -> str:
    """A header as text; an undecodable or malformed one is empty rather than an exception."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _address(raw_value: str) -> tuple[str, str]:
    name, address = parseaddr(raw_value)
    return name.strip(), address.strip().lower()


def message_ids(value: str) -> list[str]:
    return MESSAGE_ID_RE.findall(value or "")


def derived_key(raw: bytes, message: Message) -> str:
    """A stable key for a message without a Message-ID: the same message posted twice (an ESP
    retrying) gets the same key. Received/trace headers differ between deliveries, so only the
    headers the sender wrote and the body count."""
    digest = hashlib.sha256()
    for name in ("From", "To", "Cc", "Subject", "Date"):
        digest.update(f"{name}:{_header(message, name)}\n".encode(errors="replace"))
    body_start = raw.find(b"\r\n\r\n")
    body_start = raw.find(b"\n\n") if body_start < 0 else body_start
    digest.update(raw[body_start:] if body_start >= 0 else raw)
    return "sha256:" + digest.hexdigest()


def _text_of(message: AnymailInboundMessage) -> str:
    try:
        text = message.text
    except (LookupError, ValueError):  # an unknown charset: decode what can be decoded
        text = None
    if text and text.strip():
        return text.strip()
    try:
        html = message.html
    except (LookupError, ValueError):
        html = None
    return html_to_text(html).strip() if html else ""


def _attachments(message: AnymailInboundMessage) -> list[Attachment]:
    found: list[Attachment] = []
    for number, part in enumerate(message.walk(), start=1):
        if not isinstance(part, EmailMessage) or part is message:
            continue
        is_attached = part.is_attachment() or (
            part.get_content_maintype() == "message" and part.get_content_disposition() != "inline"
        )
        if not is_attached or part.get_content_maintype() == "multipart":
            continue
        try:
            content = part.get_content_bytes()  # type: ignore[attr-defined]
        except (AssertionError, ValueError):
            continue
        if content is None:
            continue
        name = part.get_filename() or ""
        if not name:
            name = f"message-{number}.eml" if part.get_content_maintype() == "message" else f"attachment-{number}"
        found.append(Attachment(name=name, mime_type=part.get_content_type(), content=content))
    return found


def normalise(message: AnymailInboundMessage, raw: bytes | None = None) -> ParsedMail:
    """`raw`: the bytes as received when the webhook had them; else the message re-serialised."""
    raw = raw if raw is not None else message.as_bytes()
    message_id_header = _header(message, "Message-ID")
    ids = message_ids(message_id_header)
    message_id = ids[0] if ids else ""
    key = message_id or derived_key(raw, message)
    if len(key) > MAX_KEY:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    sender_name, sender = _address(_header(message, "From"))
    _reply_name, reply_to = _address(_header(message, "Reply-To"))
    envelope_sender = getattr(message, "envelope_sender", None)
    recipients: list[str] = []
    envelope_recipient = getattr(message, "envelope_recipient", None)
    if envelope_recipient:
        recipients.append(str(envelope_recipient).strip().lower())
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        values = [_header(message, header)] if message.get(header) is not None else []
        for _name, address in getaddresses(values):
            address = address.strip().lower()
            if address and address not in recipients:
                recipients.append(address)
    return ParsedMail(
        raw=raw,
        message_key=key,
        message_id=message_id,
        sender=sender,
        sender_name=sender_name[:200],
        envelope_sender=None if envelope_sender is None else str(envelope_sender).strip().strip("<>").lower(),
        reply_to=reply_to,
        recipients=recipients,
        subject=_header(message, "Subject")[:998],
        text=_text_of(message),
        in_reply_to=message_ids(_header(message, "In-Reply-To")),
        references=message_ids(_header(message, "References")),
        attachments=_attachments(message),
        message=message,
    )


def split_address(address: str) -> tuple[str, str, str]:
    """`local+tag@domain` → (local, tag, domain); tag empty without a `+`."""
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError):
        local, _, domain = address.rpartition("@")
    else:
        local, domain = parsed.username, parsed.domain
    base, _, tag = local.partition("+")
    return base.lower(), tag.lower(), domain.lower()
