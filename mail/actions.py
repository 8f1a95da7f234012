"""Writes of the mail app: receiving a message (route, loop safety, storage, thread, enqueue),
claiming it for the MailWorker, recording and sending its reply (docs/mail.md)."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from meshsite.errors import ErrorCode, MeshError
from observability.tasks import enqueue_on_commit
from rooms.actions.rooms import do_create_room
from rooms.models import Room
from threads.actions import do_create_thread, do_post_message
from threads.models import Thread

from .models import InboundMessage, Mailbox, MailThreadLink
from .parsing import ParsedMail
from .routing import NoRoute, Route, route
from .safety import refusal
from .storage import store_message
from .subjects import thread_title

logger = logging.getLogger(__name__)
MAX_THREAD_TEXT = 100_000 - 1000
MAX_ATTACHMENT_PARTS = 60


class MailRefused(Exception):
    """The webhook is answered with `status` and this reason; nothing was stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Received:
    inbound: InboundMessage
    created: bool  # False: the same message was received before (a webhook retried)


def sender_author(inbound: InboundMessage) -> dict[str, Any]:
    """How an email's sender appears in the thread: not a participant, so no participant id."""
    return {
        "id": "",
        "identity": f"mail:{inbound.sender}"[:200],
        "role": "user",
        "name": (inbound.sender_name or inbound.sender)[:200],
    }


def _rate_refusal(mailbox: Mailbox, sender: str) -> str | None:
    limit = mailbox.rate_per_hour if mailbox.rate_per_hour is not None else settings.MESHSITE_MAIL_RATE_PER_HOUR
    if not limit:
        return None
    since = timezone.now() - timedelta(hours=1)
    count = InboundMessage.objects.filter(mailbox=mailbox, sender=sender, received_at__gte=since).count()
    if count >= limit:
        return f"rate limited: {sender} sent {count} messages to this mailbox in the last hour (limit {limit})"
    return None


def _find_thread(room: Room, mail: ParsedMail) -> Thread | None:
    """The thread of the conversation the message answers, in this room."""
    ids = [*reversed(mail.in_reply_to), *reversed(mail.references)]
    if not ids:
        return None
    links = MailThreadLink.objects.filter(project_id=room.project_id, message_id__in=ids, thread__room=room)
    by_id = {link.message_id: link.thread for link in links.select_related("thread")}
    return next((by_id[i] for i in ids if i in by_id), None)


def link_message_id(project_id: int, message_id: str, thread_id: str) -> None:
    if message_id and len(message_id) <= 255:
        MailThreadLink.objects.get_or_create(
            project_id=project_id, message_id=message_id, defaults={"thread_id": thread_id}
        )


def _thread_parts(inbound: InboundMessage, eml_path: str, attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    heading = (
        f"Email from {inbound.sender_name} <{inbound.sender}>"
        if inbound.sender_name
        else f"Email from {inbound.sender}"
    )
    text = f"{heading}\nSubject: {inbound.subject or '(none)'}\n\n{inbound.text or '(no text)'}"
    if len(text) > MAX_THREAD_TEXT:
        text = text[:MAX_THREAD_TEXT] + "\n… (cut here; the whole message is in the attached .eml)"
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts.append({"type": "attachment", "path": eml_path, "name": "message.eml", "mime_type": "message/rfc822"})
    for record in attachments[:MAX_ATTACHMENT_PARTS]:
        parts.append({"type": "attachment", **record})
    return parts


def do_receive_mail(mail: ParsedMail, *, esp: str, project_id: int | None = None) -> Received:
    """Stores an inbound message and queues it for its MailWorker, or records why it is ignored.
    Raises MailRefused (too large, no mailbox) before anything is written. A message whose key
    was received before returns that one (`created=False`) and changes nothing."""
    limit = settings.MESHSITE_MAIL_MAX_BYTES
    if len(mail.raw) > limit:
        raise MailRefused(413, "too_large", f"the message is {len(mail.raw)} bytes; the limit is {limit}")
    try:
        found = route(mail.recipients, project_id=project_id)
    except NoRoute as exc:
        raise MailRefused(404, "no_mailbox", str(exc)) from None
    project = found.mailbox.room.project
    try:
        return _receive(mail, found, esp)
    except IntegrityError:
        # the same message in a concurrent request: theirs was stored
        existing = InboundMessage.objects.filter(project=project, message_key=mail.message_key).first()
        if existing is None:
            raise
        return Received(existing, False)
    except MeshError as exc:
        if exc.code == ErrorCode.PAYLOAD_TOO_LARGE:
            raise MailRefused(413, "too_large", f"an attachment is too large for room storage: {exc.message}") from None
        raise


@transaction.atomic
def _receive(mail: ParsedMail, found: Route, esp: str) -> Received:
    mailbox = found.mailbox
    project = mailbox.room.project
    existing = InboundMessage.objects.filter(project=project, message_key=mail.message_key).first()
    if existing is not None:
        return Received(existing, False)
    room = mailbox.room if found.room_name == mailbox.room.name else do_create_room(project, found.room_name)
    own = Mailbox.objects.values_list("address", flat=True)
    reason = refusal(mail, own_addresses=own, open_to_all=mailbox.open, allowed=mailbox.allowed_list())
    reason = reason or _rate_refusal(mailbox, mail.sender)
    inbound = InboundMessage(
        project=project,
        mailbox=mailbox,
        room=room,
        message_key=mail.message_key,
        esp=esp,
        sender=mail.sender[:320],
        sender_name=mail.sender_name,
        reply_to=mail.reply_to[:320],
        recipient=found.recipient[:320],
        subject=mail.subject,
        in_reply_to=" ".join(mail.in_reply_to)[:998],
        references=" ".join(mail.references),
        text=mail.text,
        size=len(mail.raw),
    )
    if reason:
        # kept for the record, without its contents: a flood of refused mail fills no storage
        inbound.status, inbound.reason, inbound.text = InboundMessage.Status.IGNORED, reason[:300], ""
        inbound.save()
        logger.info("mail %s from %s ignored: %s", mail.message_key, mail.sender, reason)
        return Received(inbound, True)
    written_by = mailbox.service.name
    inbound.eml_path, inbound.attachments = store_message(room, mail, written_by)
    thread = _find_thread(room, mail)
    if thread is None:
        record = do_create_thread(room.pk, thread_title(mail.subject), f"mail:{mail.sender}"[:200])
        thread = Thread.objects.get(pk=record["id"])
    inbound.thread = thread
    # a sweep enqueues it again if the task below is lost before it starts (mail/sweep.py)
    inbound.lease_until = timezone.now() + timedelta(seconds=settings.MESHSITE_MAIL_REQUEUE_SECONDS)
    inbound.save()
    link_message_id(project.pk, mail.message_id, thread.pk)
    do_post_message(
        room.pk, thread.pk, sender_author(inbound), _thread_parts(inbound, inbound.eml_path, inbound.attachments)
    )
    from .tasks import process_inbound

    enqueue_on_commit(process_inbound, inbound.pk)
    return Received(inbound, True)


def do_claim_inbound(inbound_id: int) -> tuple[InboundMessage | None, float]:
    """Takes a queued message (or one whose last attempt's lease ran out) for processing:
    (message, 0). (None, seconds) when another attempt holds it for that long yet; (None, 0) when
    there is nothing to do (done, ignored or gone)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.MESHSITE_MAIL_PROCESS_SECONDS)
    claimable = Q(status=InboundMessage.Status.QUEUED) | Q(status=InboundMessage.Status.PROCESSING, lease_until__lt=now)
    claimed = (
        InboundMessage.objects.filter(claimable, pk=inbound_id).update(
            status=InboundMessage.Status.PROCESSING, lease_until=lease, attempts=F("attempts") + 1
        )
        == 1
    )
    inbound = (
        InboundMessage.objects.select_related("room__project", "mailbox__service", "thread")
        .filter(pk=inbound_id)
        .first()
    )
    if claimed:
        return inbound, 0.0
    if inbound is not None and inbound.status == InboundMessage.Status.PROCESSING and inbound.lease_until:
        return None, max(0.0, (inbound.lease_until - now).total_seconds())
    return None, 0.0


def do_finish_inbound(inbound_id: int, status: str, reason: str = "", *, retry_in: float | None = None) -> None:
    """Ends an attempt: `status` with its reason; `retry_in` (queued again): when the sweep may
    enqueue it if the retry the task scheduled is lost."""
    lease_until = None
    if retry_in is not None:
        lease_until = timezone.now() + timedelta(seconds=retry_in + settings.MESHSITE_MAIL_REQUEUE_SECONDS)
    InboundMessage.objects.filter(pk=inbound_id).update(status=status, reason=reason[:300], lease_until=lease_until)
