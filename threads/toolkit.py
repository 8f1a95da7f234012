"""`threads`: create, list, read, post to, update and delete the room's threads.

Grants: `threads.read` and `threads.write` patterns match thread ids (`t_…`); creating a thread
needs a write pattern matching its new id (`*` does). Readers of a thread get its notifications:
`threads.created`, `threads.updated`, `threads.message`, `threads.message_updated`,
`threads.deleted`.
"""

from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from meshsite.errors import invalid_params, permission_denied
from rooms.events import run_action
from toolkits.base import BuiltinToolkit, CallContext, builtin_tool

from .actions import (
    access_thread,
    do_configure_thread,
    do_create_thread,
    do_delete_thread,
    do_post_message,
    do_update_message,
)
from .parts import PARTS_SCHEMA, parts_from
from .selectors import messages_page, threads_page

THREAD_ID = {"type": "string", "pattern": "^t_[0-9a-f]{16}$"}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 200}
THREAD = {"type": "object", "required": ["id", "title", "created_by", "last_seq", "toolkits"]}
# Toolkit names or fnmatch patterns (`*`, `?`) a thread switches on for the agents serving it.
TOOLKITS = {
    "type": "array",
    "maxItems": 32,
    "uniqueItems": True,
    "items": {"type": "string", "pattern": "^[A-Za-z0-9_.*?-]{1,64}$"},
}
MESSAGE = {"type": "object", "required": ["thread_id", "seq", "author", "parts"]}


def check(ctx: CallContext, action: str, thread_id: str) -> None:
    if not ctx.caller.grants.may("threads", action, thread_id):
        raise permission_denied(f"this token may not {action} thread {thread_id!r}")


class ThreadsToolkit(BuiltinToolkit):
    name = "threads"
    description = "Conversations in the room: create threads, post and read messages, shared live."

    @builtin_tool(
        description="Create a thread; `toolkits` switches room toolkits on for the agents serving it.",
        input_schema={
            "type": "object",
            "properties": {"title": {"type": "string", "maxLength": 200}, "toolkits": TOOLKITS},
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"thread": THREAD}, "required": ["thread"]},
    )
    async def create(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        if not ctx.caller.grants.may("threads", "write", "t_new"):
            raise permission_denied("this token may not create threads")
        record = await run_action(
            do_create_thread,
            ctx.caller.room_id,
            arguments.get("title", ""),
            ctx.caller.identity,
            arguments.get("toolkits"),
        )
        return {"thread": record}

    @builtin_tool(
        description="Change a thread's title or the toolkits it switches on (its creator, or an agent or service).",
        input_schema={
            "type": "object",
            "properties": {
                "thread_id": THREAD_ID,
                "title": {"type": "string", "maxLength": 200},
                "toolkits": TOOLKITS,
            },
            "required": ["thread_id"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"thread": THREAD}, "required": ["thread"]},
    )
    async def configure(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        thread_id = arguments["thread_id"]
        check(ctx, "write", thread_id)
        record = await run_action(
            do_configure_thread,
            ctx.caller.room_id,
            thread_id,
            ctx.caller.identity,
            ctx.caller.role,
            title=arguments.get("title"),
            toolkits=arguments.get("toolkits"),
        )
        return {"thread": record}

    @builtin_tool(
        description="List the room's threads, most recently active first, a page at a time.",
        input_schema={
            "type": "object",
            "properties": {"limit": LIMIT, "cursor": {"type": "string", "maxLength": 100}},
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"threads": {"type": "array", "items": THREAD}, "next_cursor": {"type": ["string", "null"]}},
            "required": ["threads", "next_cursor"],
        },
    )
    async def list(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        try:
            page = await sync_to_async(threads_page)(
                ctx.caller.room_id, arguments.get("cursor"), arguments.get("limit", 50)
            )
        except (ValidationError, ValueError):
            raise invalid_params("cursor is not one this tool returned") from None
        page["threads"] = [t for t in page["threads"] if ctx.caller.grants.may("threads", "read", t["id"])]
        return page

    @builtin_tool(
        description="Read a thread: its messages after `since_seq` (0: from the start), a page at a time.",
        input_schema={
            "type": "object",
            "properties": {"thread_id": THREAD_ID, "since_seq": {"type": "integer", "minimum": 0}, "limit": LIMIT},
            "required": ["thread_id"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "thread": THREAD,
                "messages": {"type": "array", "items": MESSAGE},
                "more": {"type": "boolean"},
            },
            "required": ["thread", "messages", "next_since_seq", "more"],
        },
    )
    async def get(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        thread_id = arguments["thread_id"]
        check(ctx, "read", thread_id)

        def read() -> dict[str, Any]:
            thread = access_thread(ctx.caller.room_id, thread_id)
            return messages_page(thread, arguments.get("since_seq", 0), arguments.get("limit", 100))

        return await sync_to_async(read)()

    @builtin_tool(
        description="Post a message to a thread: `text`, or content `parts` (text, attachment, tool_call).",
        input_schema={
            "type": "object",
            "properties": {
                "thread_id": THREAD_ID,
                "text": {"type": "string", "maxLength": 100_000},
                "parts": PARTS_SCHEMA,
                "reply_to": {"type": "integer", "minimum": 1},
            },
            "required": ["thread_id"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"message": MESSAGE}, "required": ["message"]},
    )
    async def post(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        thread_id = arguments["thread_id"]
        check(ctx, "write", thread_id)
        parts = parts_from(arguments)
        author = {**ctx.caller.summary}
        record = await run_action(
            do_post_message, ctx.caller.room_id, thread_id, author, parts, arguments.get("reply_to")
        )
        return {"message": record}

    @builtin_tool(
        description="Replace the parts of a message you posted (e.g. a tool call's progress and result).",
        input_schema={
            "type": "object",
            "properties": {
                "thread_id": THREAD_ID,
                "seq": {"type": "integer", "minimum": 1},
                "text": {"type": "string", "maxLength": 100_000},
                "parts": PARTS_SCHEMA,
            },
            "required": ["thread_id", "seq"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"message": MESSAGE}, "required": ["message"]},
    )
    async def update(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        thread_id = arguments["thread_id"]
        check(ctx, "write", thread_id)
        record = await run_action(
            do_update_message,
            ctx.caller.room_id,
            thread_id,
            arguments["seq"],
            ctx.caller.identity,
            parts_from(arguments),
        )
        return {"message": record}

    @builtin_tool(
        description="Stream a live event about a thread (a turn's text deltas, tool-call states) to its readers; "
        "not stored.",
        input_schema={
            "type": "object",
            "properties": {
                "thread_id": THREAD_ID,
                "turn_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "event": {"type": "string", "pattern": "^[a-z_]{1,40}$"},
                "data": {"type": "object"},
            },
            "required": ["thread_id", "turn_id", "event"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"sent": {"type": "boolean"}}},
    )
    async def stream(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        thread_id = arguments["thread_id"]
        check(ctx, "write", thread_id)
        # No database read per event: a turn streams many; readers of an unknown id are nobody.
        params = {
            "thread_id": thread_id,
            "turn_id": arguments["turn_id"],
            "event": arguments["event"],
            "data": arguments.get("data", {}),
            "from": ctx.caller.summary,
        }
        await ctx.broadcast("threads.turn", params)
        return {"sent": True}

    @builtin_tool(
        description="Delete a thread and its messages (its creator, or an agent or service).",
        input_schema={
            "type": "object",
            "properties": {"thread_id": THREAD_ID},
            "required": ["thread_id"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"deleted": {"type": "boolean"}}},
    )
    async def delete(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        thread_id = arguments["thread_id"]
        check(ctx, "write", thread_id)
        await run_action(do_delete_thread, ctx.caller.room_id, thread_id, ctx.caller.identity, ctx.caller.role)
        return {"deleted": True}
