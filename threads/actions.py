"""Writes to threads. Each emits its room notification after commit (to readers of the thread)."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from meshsite.errors import invalid_params, not_found, permission_denied
from rooms.events import send_room_event_on_commit

from .models import Thread, ThreadMessage


def access_thread(room_id: int, thread_id: str, *, for_update: bool = False, only: tuple[str, ...] = ()) -> Thread:
    """The room's thread (its row locked until commit with `for_update`); `only`: just these
    fields (a post needs two of them, and the query is on every message's path)."""
    # without the model's ordering: one row by its key, and no ORDER BY to compile for it
    query = Thread.objects.filter(pk=thread_id, room_id=room_id).order_by()
    if for_update:
        query = query.select_for_update()
    if only:
        query = query.only(*only)
    thread = query.first()
    if thread is None:
        raise not_found(f"no thread {thread_id!r} in this room")
    return thread


@transaction.atomic
def do_create_thread(room_id: int, title: str, created_by: str, toolkits: list[str] | None = None) -> dict[str, Any]:
    thread = Thread.objects.create(room_id=room_id, title=title, created_by=created_by, toolkits=toolkits or [])
    record = thread.to_record()
    send_room_event_on_commit(room_id, "threads.created", {"thread_id": thread.pk, "thread": record})
    return record


@transaction.atomic
def do_post_message(
    room_id: int, thread_id: str, author: dict[str, Any], parts: list[Any], reply_to: int | None = None
) -> dict[str, Any]:
    """Appends a message with the thread's next sequence number; concurrent posts are serialised
    on the thread's row, so numbers are gapless and in commit order. `reply_to`: the seq of an
    earlier message of the thread that this one answers."""
    thread = access_thread(room_id, thread_id, for_update=True, only=("room_id", "last_seq"))
    if reply_to is not None and reply_to > thread.last_seq:
        raise invalid_params(f"reply_to {reply_to}: thread {thread_id!r} has no such message yet")
    # The row is ours until commit (FOR UPDATE; on SQLite the transaction's write lock), so the
    # number read is the number to bump.
    thread.last_seq, thread.updated_at = thread.last_seq + 1, timezone.now()
    Thread.objects.filter(pk=thread.pk).update(last_seq=thread.last_seq, updated_at=thread.updated_at)
    message = ThreadMessage.objects.create(
        thread=thread,
        seq=thread.last_seq,
        author_participant_id=author["id"],
        author_identity=author["identity"],
        author_role=author["role"],
        author_name=author.get("name") or "",
        parts=parts,
        reply_to=reply_to,
    )
    record = message.to_record()
    send_room_event_on_commit(room_id, "threads.message", {"thread_id": thread.pk, "message": record})
    return record


@transaction.atomic
def do_update_message(room_id: int, thread_id: str, seq: int, author_identity: str, parts: list[Any]) -> dict[str, Any]:
    """Replaces a message's parts (an agent updating a tool call as it runs); authors only."""
    access_thread(room_id, thread_id)
    message = ThreadMessage.objects.select_for_update().filter(thread_id=thread_id, seq=seq).first()
    if message is None:
        raise not_found(f"thread {thread_id!r} has no message {seq}")
    if message.author_identity != author_identity:
        raise permission_denied("only the author of a message may update it")
    message.parts = parts
    message.save(update_fields=["parts", "updated_at"])
    record = message.to_record()
    send_room_event_on_commit(room_id, "threads.message_updated", {"thread_id": thread_id, "message": record})
    return record


@transaction.atomic
def do_configure_thread(
    room_id: int,
    thread_id: str,
    requester_identity: str,
    requester_role: str,
    *,
    title: str | None = None,
    toolkits: list[str] | None = None,
) -> dict[str, Any]:
    """Changes a thread's title or toolkits: its creator, or an agent or service."""
    thread = access_thread(room_id, thread_id, for_update=True)
    if requester_role == "user" and thread.created_by != requester_identity:
        raise permission_denied("only the thread's creator (or an agent or service) may configure it")
    if title is not None:
        thread.title = title
    if toolkits is not None:
        thread.toolkits = toolkits
    thread.save(update_fields=["title", "toolkits", "updated_at"])
    record = thread.to_record()
    send_room_event_on_commit(room_id, "threads.updated", {"thread_id": thread.pk, "thread": record})
    return record


@transaction.atomic
def do_delete_thread(room_id: int, thread_id: str, requester_identity: str, requester_role: str) -> None:
    thread = access_thread(room_id, thread_id, for_update=True)
    if requester_role == "user" and thread.created_by != requester_identity:
        raise permission_denied("only the thread's creator (or an agent or service) may delete it")
    thread.delete()
    send_room_event_on_commit(room_id, "threads.deleted", {"thread_id": thread_id})
