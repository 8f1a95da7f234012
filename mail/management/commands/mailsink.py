"""`manage.py mailsink`: a local SMTP server on 127.0.0.1:1025 (the embedded default's
EMAIL_PORT) that prints every message it receives and keeps it in var/mailsink/<n>.eml."""

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from mail.sink import SmtpSink


class Command(BaseCommand):
    help = "Run a local SMTP server that shows the mail Meshsite sends (replies of MailWorkers)."
    requires_system_checks: list[str] = []  # it serves no Meshsite request: the server's checks are not its own

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.EMAIL_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        folder = settings.VAR_DIR / "mailsink"
        sink = SmtpSink(options["host"], options["port"], folder=folder).start()
        self.stdout.write(
            f"SMTP sink on {options['host']}:{options['port']}; messages kept in {folder}/ (Ctrl-C stops)"
        )
        signal.signal(signal.SIGTERM, _interrupt)
        shown = 0
        try:
            while True:
                time.sleep(0.3)
                shown = self._show(sink, shown)
        except KeyboardInterrupt:
            pass
        finally:
            sink.stop()
            self._show(sink, shown)

    def _show(self, sink: SmtpSink, shown: int) -> int:
        for received in sink.messages[shown:]:
            shown += 1
            message = received.message
            body = message.get_body(("plain",))
            self.stdout.write(
                f"\n--- #{shown} from {received.mail_from} to {', '.join(received.rcpt_tos)}\n"
                f"Subject: {message['Subject']}\nMessage-ID: {message['Message-ID']}\n"
                f"In-Reply-To: {message['In-Reply-To']}\n\n"
                f"{body.get_content() if body is not None else '(no text part)'}"
            )
        return shown


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
