"""MailWorkers the mail tests run as services (by class path)."""

from typing import Any

from meshsite_client.agents.mail_worker import MailReply, MailWorker


class EchoMailWorker(MailWorker):
    """Answers with what it read, attaching the message's first attachment back (from storage)."""

    title = "Support bot"

    async def handle_email(self, email: dict[str, Any]) -> MailReply | None:
        first_line = (email["text"] or "").strip().splitlines()[0] if email["text"].strip() else ""
        attachments = [email["attachments"][0]["path"]] if email["attachments"] else []
        participants = await self.room.invoke("participants", "list", {})
        return MailReply(
            text=f"Echo: {first_line}\nRoom: {email['room']}\nParticipants seen: {len(participants['participants'])}",
            attachments=attachments,
        )


class SilentMailWorker(MailWorker):
    async def handle_email(self, email: dict[str, Any]) -> MailReply | None:
        return None


class SlowMailWorker(EchoMailWorker):
    """Takes its time, so a test can kill the Celery worker while it composes."""

    async def handle_email(self, email: dict[str, Any]) -> MailReply | None:
        import asyncio

        await asyncio.sleep(float(self.config.get("seconds", 4)))
        return await super().handle_email(email)
