"""The MailWorker's background task: take an inbound message, have its MailWorker compose the reply
(once), send it (once). Safe to run twice for one message and after a killed worker."""

import logging
import smtplib

from anymail.exceptions import AnymailAPIError  # type: ignore[import-untyped]
from meshsite_client.errors import ConnectionLost

from observability.tasks import background_task, enqueue

from .actions import do_claim_inbound, do_finish_inbound
from .models import InboundMessage, OutboundMessage
from .outbound import do_record_reply, do_send_reply
from .runner import run_mail_worker
from .sweep import renewing_lease

logger = logging.getLogger(__name__)
MAX_RETRIES = 5
# Worth another attempt: the mail server or ESP, or the room server, briefly unreachable.
TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, AnymailAPIError, ConnectionError, ConnectionLost)


def retry_delay(attempts: int) -> float:
    return float(min(60, 2**attempts))


# Transient failures are retried by enqueueing again with a delay (not Celery's autoretry): the
# same path works on the embedded default, where tasks run in-process and Celery's eager mode
# does not retry; the inbound row (status, attempts) is the retry state.
@background_task("mail.process_inbound")
def process_inbound(inbound_id: int) -> None:
    inbound, busy_for = do_claim_inbound(inbound_id)
    if inbound is None:
        if busy_for:  # another attempt holds it (a redelivery of a killed worker's message)
            enqueue(process_inbound, inbound_id, countdown=busy_for + 1)
        return
    service = inbound.mailbox.service if inbound.mailbox else None
    if service is None or not service.enabled:
        do_finish_inbound(
            inbound.pk, InboundMessage.Status.IGNORED, "its mailbox or MailWorker service is gone or disabled"
        )
        return
    try:
        outbound = OutboundMessage.objects.filter(inbound=inbound).first()
        if outbound is None:
            with renewing_lease(inbound.pk):
                answer = run_mail_worker(inbound)
            if answer.text is None:
                do_finish_inbound(inbound.pk, InboundMessage.Status.IGNORED, "its MailWorker chose not to reply")
                return
            outbound = do_record_reply(inbound, answer.text, answer.attachments, answer.author)
        do_send_reply(outbound.pk)
    except TRANSIENT as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if inbound.attempts > MAX_RETRIES:
            do_finish_inbound(inbound.pk, InboundMessage.Status.FAILED, reason)
            raise
        delay = retry_delay(inbound.attempts)
        do_finish_inbound(inbound.pk, InboundMessage.Status.QUEUED, reason, retry_in=delay)
        logger.warning(
            "mail %s: attempt %d failed (%s); retrying in %.0fs", inbound.pk, inbound.attempts, reason, delay
        )
        enqueue(process_inbound, inbound.pk, countdown=delay)
    except Exception as exc:
        do_finish_inbound(inbound.pk, InboundMessage.Status.FAILED, f"{type(exc).__name__}: {exc}")
        raise
