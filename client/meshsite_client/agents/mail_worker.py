"""`MailWorker`: an agent that answers email.

The server receives a message (an ESP webhook or raw MIME), stores it and its attachments in the
room's storage, posts it to the conversation's thread and starts a background task that brings
the MailWorker into the room as a participant and calls `handle_email(email)` with the email
record (docs/mail.md):

    {"id", "message_id", "from", "from_name", "reply_to", "to", "subject", "text",
     "attachments": [{"path", "name", "mime_type", "size"}], "eml_path", "thread_id", "room"}

`handle_email` returns a `MailReply` (text, and room storage paths to attach) or None for no
reply. The server sends the reply with the threading headers and posts it to the thread.

The default `handle_email` asks the model (any OpenAI-compatible server, `meshsite_client.llm`)
with the thread so far as the conversation, letting it use the room's tools (`tool_toolkits`),
and recording every model call with `usage.record`. Override `handle_email`, `compose_reply`,
`email_prompt` or `conversation` to change what it does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import RpcError
from ..llm import Usage
from ..tracing import new_traceparent
from .worker import Worker

log = logging.getLogger("meshsite_client.agents.mail_worker")


@dataclass
class MailReply:
    text: str
    attachments: list[str] = field(default_factory=list)  # paths in the room's storage


class MailWorker(Worker):
    """Answers email; see the module docstring. The model settings (`model`, `api_key`,
    `base_url`, `tool_toolkits`, `max_tool_rounds`, `tool_timeout`) are the Worker's; it is run
    per inbound message, not bound to a queue."""

    kind = "mailworker"
    max_tool_rounds: int = 6
    # appended to every reply
    signature: str = ""

    # -- what to answer ------------------------------------------------------------------------

    async def handle_email(self, email: dict[str, Any]) -> MailReply | None:
        """The reply to `email`, or None to send none (the message is marked ignored)."""
        text = await self.compose_reply(email)
        if text is None:
            return None
        if self.signature:
            text = f"{text.rstrip()}\n\n-- \n{self.signature}"
        return MailReply(text=text)

    def email_prompt(self, email: dict[str, Any]) -> str:
        """The system message: `system_prompt()` (description and rules) and how to answer."""
        base = self.system_prompt() or "You answer email on behalf of the people in a shared room."
        return (
            f"{base}\n\nYou are answering an email conversation. Reply to the last email, in plain text, "
            "without a subject line or a signature. Attachments are in the room's storage at the paths given."
        )

    async def conversation(self, email: dict[str, Any]) -> list[dict[str, Any]]:
        """The conversation as chat messages: the thread's messages (this agent's as the
        assistant's), or the email alone when the thread cannot be read."""
        messages: list[dict[str, Any]] = []
        thread_id = email.get("thread_id")
        if thread_id:
            try:
                since, more = 0, True
                while more:
                    page = await self.room.invoke(
                        "threads", "get", {"thread_id": thread_id, "since_seq": since, "limit": 200}
                    )
                    messages += [self._as_chat(message) for message in page["messages"]]
                    since, more = page["next_since_seq"], page["more"]
            except RpcError:
                log.warning("could not read thread %s; answering the email alone", thread_id, exc_info=True)
                messages = []
        if not messages:
            messages = [{"role": "user", "content": _email_text(email)}]
        return messages

    def _as_chat(self, message: dict[str, Any]) -> dict[str, Any]:
        text = "\n".join(p["text"] for p in message["parts"] if p.get("type") == "text" and p.get("text"))
        paths = [p["path"] for p in message["parts"] if p.get("type") == "attachment" and p.get("path")]
        if paths:
            text += "\n\nAttachments in the room's storage: " + ", ".join(paths)
        role = "assistant" if message["author"].get("identity") == self.room.participant.identity else "user"
        return {"role": role, "content": text}

    async def compose_reply(self, email: dict[str, Any]) -> str | None:
        """Runs the model, and the room tools it asks for, until it answers."""
        traceparent = new_traceparent()
        messages = [{"role": "system", "content": self.email_prompt(email)}, *await self.conversation(email)]

        async def record(usage: Any, model: str) -> None:
            await self._record_email_usage(usage, model, email, traceparent)

        text = await self.answer_with_tools(messages, traceparent, record)
        if text is None:
            return "I could not finish answering this (too many tool calls); a person will follow up."
        return text

    async def _record_email_usage(self, usage: Usage, model: str, email: dict[str, Any], traceparent: str) -> None:
        arguments: dict[str, Any] = {
            "kind": "llm",
            "model": usage.model or model,
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "cached_tokens": min(usage.cached_tokens or 0, usage.prompt_tokens),
        }
        if email.get("thread_id"):
            arguments["thread_id"] = email["thread_id"]
        try:
            await self.room.invoke("usage", "record", arguments, traceparent=traceparent)
        except RpcError:
            log.exception("could not record the usage of a reply to %s", email.get("message_id"))


def _email_text(email: dict[str, Any]) -> str:
    lines = [f"Email from {email.get('from_name') or ''} <{email.get('from')}>", f"Subject: {email.get('subject')}"]
    lines += ["", str(email.get("text") or "(no text)")]
    attachments = email.get("attachments") or []
    if attachments:
        lines += ["", "Attachments in the room's storage: " + ", ".join(a["path"] for a in attachments)]
    return "\n".join(lines)
