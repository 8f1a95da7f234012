"""A local SMTP server that keeps what it receives: `manage.py mailsink` (the embedded default's
outbox, docs/mail.md) and the tests' stand-in for a mail provider. Real SMTP on the wire; the
messages are parsed back with the standard library."""

import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, sink: "SmtpSink") -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], bytes(envelope.content))
        self.sink.keep(received)
        return "250 Message accepted for delivery"


class SmtpSink:
    """`with SmtpSink(port=0) as sink:` … `sink.wait_for(1)`; with `folder`, each message is also
    written there as `<n>.eml`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1025, folder: Path | None = None) -> None:
        self.messages: list[Received] = []
        self.folder = folder
        self._changed = threading.Condition()
        self.controller = Controller(_Handler(self), hostname=host, port=port)

    def keep(self, received: Received) -> None:
        with self._changed:
            self.messages.append(received)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / f"{len(self.messages)}.eml").write_bytes(received.data)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"the SMTP sink received {len(self.messages)} message(s), expected {count}")
            return list(self.messages)

    @property
    def port(self) -> int:
        server = getattr(self.controller, "server", None)
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else int(self.controller.port)

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
