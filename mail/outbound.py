"""Replies: recorded once (with the thread message Studio shows), then sent through Django's email
backend (SMTP, or an ESP through anymail) with the conversation's threading headers, and priced
in the ledger as one `email` usage."""

import logging
from email.utils import formataddr, make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from files.selectors import get_file, open_file
from observability.budgets import Who
from observability.pricing import Amounts
from observability.usage import record_usage
from threads.actions import do_post_message

from .actions import link_message_id
from .models import InboundMessage, OutboundMessage
from .parsing import message_ids, split_address
from .subjects import reply_subject

logger = logging.getLogger(__name__)
MAX_REFERENCES = 20
MAX_REPLY_ATTACHMENTS = 20


def esp_name() -> str:
    """The ledger's `model` for outbound email: the backend's ESP (mailgun, postmark…) or smtp."""
    backend = str(settings.EMAIL_BACKEND)
    if backend.startswith("anymail.backends."):
        return backend.split(".")[2]
    return backend.rsplit(".", 2)[-2] if "." in backend else backend


def references_for(inbound: InboundMessage) -> tuple[str, str]:
    """(In-Reply-To, References) of the reply: RFC 5322 §3.6.4, the parent's References plus
    the parent's Message-ID, oldest first, the last MAX_REFERENCES kept."""
    parent = inbound.message_key if inbound.message_key.startswith("<") else ""
    chain = message_ids(inbound.references) or message_ids(inbound.in_reply_to)
    if parent and parent not in chain:
        chain.append(parent)
    return parent, " ".join(chain[-MAX_REFERENCES:])


@transaction.atomic
def do_record_reply(
    inbound: InboundMessage, text: str, attachments: list[str], author: dict[str, Any]
) -> OutboundMessage:
    """Records the reply a MailWorker composed and posts it to the conversation's thread (as the
    agent). Called once per inbound message: a second call returns the first reply."""
    existing = OutboundMessage.objects.filter(inbound=inbound).first()
    if existing is not None:
        return existing
    mailbox = inbound.mailbox
    assert mailbox is not None
    _local, _tag, domain = split_address(mailbox.address)
    in_reply_to, references = references_for(inbound)
    title = mailbox.service.title or mailbox.service.name
    outbound = OutboundMessage.objects.create(
        inbound=inbound,
        message_id=make_msgid(domain=domain or None),
        # the address it was sent to, +room tag included: an answer to the reply comes back here
        from_address=formataddr((title, inbound.recipient)),
        to_address=inbound.reply_to or inbound.sender,
        subject=reply_subject(inbound.subject),
        text=text,
        in_reply_to=in_reply_to,
        references=references,
        attachments=attachments[:MAX_REPLY_ATTACHMENTS],
    )
    if inbound.thread_id:
        link_message_id(inbound.project_id, outbound.message_id, inbound.thread_id)
        parts: list[dict[str, Any]] = [{"type": "text", "text": text or "(empty reply)"}]
        parts += [{"type": "attachment", "path": path} for path in outbound.attachments]
        do_post_message(inbound.room_id, inbound.thread_id, author, parts)
    return outbound


def build_email(outbound: OutboundMessage) -> EmailMessage:
    inbound = outbound.inbound
    headers = {
        "Message-ID": outbound.message_id,
        # RFC 3834: an automatic reply; well-behaved responders do not answer it (no loops)
        "Auto-Submitted": "auto-replied",
        "X-Auto-Response-Suppress": "All",
    }
    if outbound.in_reply_to:
        headers["In-Reply-To"] = outbound.in_reply_to
    if outbound.references:
        headers["References"] = outbound.references
    message = EmailMessage(
        subject=outbound.subject,
        body=outbound.text,
        from_email=outbound.from_address,
        to=[outbound.to_address],
        headers=headers,
        connection=get_connection(),
    )
    for path in outbound.attachments:
        stored = get_file(inbound.room, path)
        with open_file(stored) as handle:
            message.attach(path.rsplit("/", 1)[-1], handle.read(), stored.content_type)
    return message


def do_send_reply(outbound_id: int) -> OutboundMessage | None:
    """Sends a recorded reply unless it was sent already; records its usage and marks the inbound
    message replied. Errors from the backend propagate (the task retries the transient ones)."""
    outbound = OutboundMessage.objects.select_related("inbound__room", "inbound__mailbox__service").get(pk=outbound_id)
    if outbound.status == OutboundMessage.Status.SENT:
        return outbound
    build_email(outbound).send(fail_silently=False)
    inbound = outbound.inbound
    service = inbound.mailbox.service if inbound.mailbox else None
    identity = service.name if service else "mail"
    who = Who(
        project_id=inbound.project_id,
        room_id=inbound.room_id,
        room_name=inbound.room.name,
        participant_id="",
        identity=identity,
        agent=identity,
    )
    with transaction.atomic():
        if OutboundMessage.objects.filter(pk=outbound.pk, status=OutboundMessage.Status.COMPOSED).update(
            status=OutboundMessage.Status.SENT, sent_at=timezone.now()
        ):
            usage = record_usage(
                who,
                kind="email",
                model=esp_name(),
                amounts=Amounts(quantity=1),
                thread_id=inbound.thread_id or "",
                metadata={"message_id": outbound.message_id, "to": outbound.to_address},
            )
            OutboundMessage.objects.filter(pk=outbound.pk).update(usage_id=usage.pk)
        InboundMessage.objects.filter(pk=inbound.pk).update(status=InboundMessage.Status.REPLIED, lease_until=None)
    outbound.refresh_from_db()
    return outbound
