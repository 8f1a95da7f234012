"""The embedded default's email agent: `mail-assistant`, answering assistant@meshsite.localhost
(and assistant+<room>@meshsite.localhost) in the room `mail`. With OPENAI_API_KEY (or
OPENAI_BASE_URL) set it answers with the model; without, it says what it received, so the whole
path (webhook → storage → thread → reply through the SMTP sink) can be tried with no account."""

import os
from typing import Any

from meshsite_client.agents.mail_worker import MailReply, MailWorker

from agents.actions import do_create_service
from agents.models import Service
from rooms.actions.rooms import do_create_room
from rooms.models import Project

from .models import Mailbox

DEMO_ADDRESS = "assistant@meshsite.localhost"
DEMO_SERVICE = "mail-assistant"
DEMO_ROOM = "mail"


class DemoMailWorker(MailWorker):
    name = DEMO_SERVICE
    title = "Mail assistant"
    description = "Answers email sent to the demo mailbox."
    rules = ["Answer briefly and plainly."]
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    tool_toolkits = ["*"]

    async def handle_email(self, email: dict[str, Any]) -> MailReply | None:
        if self.llm_config().is_configured:
            return await super().handle_email(email)
        words = len(str(email.get("text") or "").split())
        attachments = ", ".join(a["name"] for a in email.get("attachments") or []) or "none"
        return MailReply(
            text=(
                f"Hello {email.get('from_name') or email.get('from')},\n\n"
                f'I received your message "{email.get("subject") or "(no subject)"}": {words} words, '
                f"attachments: {attachments}. It is stored in room '{email.get('room')}' "
                f"at {email.get('eml_path')}.\n\n"
                "(No model is configured: set OPENAI_API_KEY, or OPENAI_BASE_URL and OPENAI_MODEL, "
                "for real answers.)"
            )
        )


def ensure_mail_demo(project: Project) -> Mailbox:
    """The demo service and its mailbox (idempotent)."""
    service = Service.objects.filter(project=project, name=DEMO_SERVICE).first()
    if service is None:
        service = do_create_service(project, DEMO_SERVICE, class_path="mail.demo.DemoMailWorker")
    mailbox = Mailbox.objects.filter(address=DEMO_ADDRESS).first()
    if mailbox is None:
        room = do_create_room(project, DEMO_ROOM)
        mailbox = Mailbox.objects.create(service=service, address=DEMO_ADDRESS, room=room, open=True)
    return mailbox
