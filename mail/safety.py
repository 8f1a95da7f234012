"""Loop and abuse safety: which inbound messages a MailWorker must never answer (docs/mail.md).

Each rule returns the reason it refuses, or None. A refused message is kept for the record
(status `ignored` with the reason) and acknowledged to the ESP, so it is neither answered nor
delivered again."""

from collections.abc import Callable, Iterable
from email.message import Message

from .parsing import ParsedMail, split_address

BOUNCE_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
DSN_TYPES = frozenset({"message/delivery-status", "message/disposition-notification", "message/feedback-report"})
SUPPRESS_VALUES = frozenset({"all", "autoreply", "oof", "dr", "ndr"})


def _headers(mail: ParsedMail) -> Message:
    assert mail.message is not None
    return mail.message


def _get(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        return "?"  # present but malformed: still present
    return "" if value is None else str(value).strip()


def no_sender(mail: ParsedMail) -> str | None:
    return None if mail.sender and "@" in mail.sender else "it has no usable From address"


def bounce(mail: ParsedMail) -> str | None:
    """Delivery status notifications: the null sender, MAILER-DAEMON/postmaster, DSN content."""
    if mail.envelope_sender == "":
        return "a bounce (null envelope sender <>)"
    message = _headers(mail)
    if _get(message, "Return-Path").replace(" ", "") == "<>":
        return "a bounce (null Return-Path <>)"
    local, _tag, _domain = split_address(mail.sender) if mail.sender else ("", "", "")
    if local in BOUNCE_LOCAL_PARTS:
        return f"a bounce (from {local.upper() if local == 'mailer-daemon' else local})"
    if message.get_content_type() == "multipart/report":
        return "a delivery or read report (multipart/report)"
    if any(part.get_content_type() in DSN_TYPES for part in message.walk()):
        return "a delivery or read report"
    return None


def auto_reply(mail: ParsedMail) -> str | None:
    message = _headers(mail)
    auto_submitted = _get(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"an automatic message (Auto-Submitted: {auto_submitted[:40]})"
    precedence = _get(message, "Precedence").lower()
    if precedence in BULK_PRECEDENCE:
        return f"bulk or automatic mail (Precedence: {precedence})"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        if message.get(name) is not None:
            return f"an automatic reply ({name})"
    suppress = {v.strip().lower() for v in _get(message, "X-Auto-Response-Suppress").split(",")}
    if suppress & SUPPRESS_VALUES:
        return "its sender asks for no automatic replies (X-Auto-Response-Suppress)"
    return None


def mailing_list(mail: ParsedMail) -> str | None:
    message = _headers(mail)
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if message.get(name) is not None:
            return f"mailing-list mail ({name})"
    return None


def from_itself(own_addresses: Iterable[str]) -> Callable[[ParsedMail], str | None]:
    """Mail from one of this server's own mailboxes (with or without a +tag)."""
    own = {address.lower() for address in own_addresses}

    def rule(mail: ParsedMail) -> str | None:
        for address in {mail.sender, mail.envelope_sender or ""}:
            local, _tag, domain = split_address(address) if "@" in address else ("", "", "")
            if address in own or f"{local}@{domain}" in own:
                return "it comes from one of this server's own mailboxes"
        return None

    return rule


def sender_allowed(open_to_all: bool, allowed: list[str]) -> Callable[[ParsedMail], str | None]:
    """Open mailboxes answer anyone; others only the listed addresses and `@domain`s."""

    def rule(mail: ParsedMail) -> str | None:
        if open_to_all:
            return None
        _local, _tag, domain = split_address(mail.sender)
        if mail.sender in allowed or f"@{domain}" in allowed:
            return None
        return f"{mail.sender} is not an allowed sender of this mailbox"

    return rule


def refusal(mail: ParsedMail, *, own_addresses: Iterable[str], open_to_all: bool, allowed: list[str]) -> str | None:
    """The first rule that refuses the message, in the order that explains it best."""
    rules = [
        no_sender,
        bounce,
        auto_reply,
        mailing_list,
        from_itself(own_addresses),
        sender_allowed(open_to_all, allowed),
    ]
    for rule in rules:
        reason = rule(mail)
        if reason:
            return reason
    return None
