"""Where an inbound message lands in its room's storage:

    mail/<yyyy-mm-dd>-<key hash>/message.eml
    mail/<yyyy-mm-dd>-<key hash>/attachments/<n>-<file name>

The folder comes from the message's key, so a message stored again (a retried webhook that got
past a crash) writes the same paths instead of new ones."""

import hashlib
import unicodedata
from typing import Any

from django.utils import timezone

from files.actions import do_write_file
from files.blobs import delete_blob
from files.models import StoredFile
from rooms.models import Room

from .parsing import ParsedMail

MAX_NAME_CHARS = 120


def folder_for(message_key: str) -> str:
    digest = hashlib.sha256(message_key.encode()).hexdigest()[:16]
    return f"mail/{timezone.now():%Y-%m-%d}-{digest}"


def safe_file_name(name: str, fallback: str) -> str:
    """A file name as one path segment: no separators, controls or format characters, no dot
    segments, trimmed; the extension is kept when the name is cut."""
    cleaned = "".join(
        "_" if c in "/\\" or (unicodedata.category(c)[0] in "CZ" and c != " ") else c
        for c in unicodedata.normalize("NFC", name)
    ).strip(" .")
    if not cleaned:
        return fallback
    if len(cleaned) > MAX_NAME_CHARS:
        stem, dot, extension = cleaned.rpartition(".")
        keep = extension[:16] if dot and stem else ""
        cleaned = cleaned[: MAX_NAME_CHARS - len(keep) - 1].rstrip(" .") + ("." + keep if keep else "")
    return cleaned


def store_message(room: Room, mail: ParsedMail, written_by: str) -> tuple[str, list[dict[str, Any]]]:
    """Writes the raw message and its attachments; returns the .eml path and the attachment
    records ({path, name, mime_type, size}) for thread messages and the MailWorker.

    Precondition: inside the transaction that records the message. If a write fails (an
    attachment over the storage limit) that transaction rolls back the rows written so far, and
    their contents are deleted here: nothing of the message is left half-stored."""
    folder = folder_for(mail.message_key)
    eml_path = f"{folder}/message.eml"
    written: list[StoredFile] = []
    try:
        written.append(
            do_write_file(
                room=room, path=eml_path, content=mail.raw, content_type="message/rfc822", written_by=written_by
            )
        )
        records: list[dict[str, Any]] = []
        for number, attachment in enumerate(mail.attachments, start=1):
            name = safe_file_name(attachment.name, f"attachment-{number}")
            path = f"{folder}/attachments/{number}-{name}"
            written.append(
                do_write_file(
                    room=room,
                    path=path,
                    content=attachment.content,
                    content_type=attachment.mime_type,
                    written_by=written_by,
                )
            )
            records.append(
                {"path": path, "name": name, "mime_type": attachment.mime_type, "size": len(attachment.content)}
            )
    except BaseException:
        for stored in written:
            delete_blob(stored.blob_name)
        raise
    return eml_path, records
