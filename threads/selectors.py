"""Reads of threads, paginated."""

from typing import Any

from .models import Thread, ThreadMessage


def threads_page(room_id: int, before: str | None, limit: int) -> dict[str, Any]:
    """Threads most recently active first; `before` is the cursor of the previous page's end."""
    query = Thread.objects.in_room(room_id)
    if before:
        updated, _, thread_id = before.partition("|")
        query = query.filter(updated_at__lte=updated).exclude(updated_at=updated, id__gte=thread_id)
    threads = list(query.order_by("-updated_at", "-id")[: limit + 1])
    more = len(threads) > limit
    threads = threads[:limit]
    cursor = f"{threads[-1].updated_at.isoformat()}|{threads[-1].pk}" if more else None
    return {"threads": [t.to_record() for t in threads], "next_cursor": cursor}


def messages_page(thread: Thread, since_seq: int, limit: int) -> dict[str, Any]:
    """Messages numbered after `since_seq`, oldest first; `more` says whether to ask again."""
    messages = list(ThreadMessage.objects.filter(thread=thread, seq__gt=since_seq).order_by("seq")[: limit + 1])
    more = len(messages) > limit
    messages = messages[:limit]
    return {
        "thread": thread.to_record(),
        "messages": [m.to_record() for m in messages],
        "next_since_seq": messages[-1].seq if messages else since_seq,
        "more": more,
    }
