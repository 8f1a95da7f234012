"""`queues`: durable room queues: send, receive with a lease, ack, nack, extend, peek, stats, list.

Grants match queue names: `queues.send` patterns allow `send`; `queues.receive` patterns allow
`receive`, `ack`, `nack`, `extend` and `peek` (whoever may take messages may look at them);
`stats` needs either; `list` shows the queues the caller may send to or receive from. A
dead-letter queue is a queue of its own (`orders.dlq`): reading it takes a grant matching that
name (`orders*` does, `orders` does not). Queue activity raises no room notifications.
"""

import asyncio
from typing import Any

from asgiref.sync import sync_to_async

from meshsite.errors import permission_denied
from rooms.events import run_action
from rooms.timestamps import iso_z
from toolkits.base import BuiltinToolkit, CallContext, builtin_tool

from .actions import MAX_BATCH, MAX_DELAY, MAX_VISIBILITY_TIMEOUT, do_ack, do_extend, do_nack, do_receive, do_send
from .names import check_queue_name
from .selectors import MAX_PEEK, list_queues, peek, queue_stats
from .waiters import MAX_POLL_INTERVAL, waiting_for

MAX_WAIT = 20.0
QUEUE = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,99}$"}
MESSAGE_ID = {"type": "string", "minLength": 1, "maxLength": 24}
RECEIPT = {"type": "string", "minLength": 1, "maxLength": 48}
SECONDS = {"type": "number", "minimum": 0, "maximum": MAX_DELAY}
LEASE = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_VISIBILITY_TIMEOUT}
MESSAGES = {
    "type": "object",
    "properties": {"messages": {"type": "array", "items": {"type": "object"}}},
    "required": ["messages"],
}
COUNTS = {
    "visible": {"type": "integer"},
    "in_flight": {"type": "integer"},
    "delayed": {"type": "integer"},
    "dead": {"type": "integer"},
}
LEASED = {
    "type": "object",
    "properties": {"queue": QUEUE, "message_id": MESSAGE_ID, "receipt": RECEIPT},
    "required": ["queue", "message_id", "receipt"],
    "additionalProperties": False,
}


def check(ctx: CallContext, action: str, queue: str) -> str:
    check_queue_name(queue)
    if not ctx.caller.grants.may("queues", action, queue):
        raise permission_denied(f"this token may not {action} on queue {queue!r}", queue=queue)
    return queue


def with_properties(schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**schema, "properties": {**schema["properties"], **extra}}


class QueuesToolkit(BuiltinToolkit):
    name = "queues"
    description = "Durable room queues: send, receive with a visibility timeout, ack, nack with retry, dead letters."

    @builtin_tool(
        description="Send a JSON message to a queue, optionally visible only after `delay` seconds.",
        input_schema={
            "type": "object",
            "properties": {"queue": QUEUE, "body": {}, "delay": SECONDS},
            "required": ["queue", "body"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "required": ["message_id", "queue", "sent_at", "visible_at"]},
    )
    async def send(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        queue = check(ctx, "send", arguments["queue"])
        message = await run_action(
            do_send,
            room=ctx.caller.room_id,
            queue=queue,
            body=arguments["body"],
            sent_by=ctx.caller.identity,
            delay=arguments.get("delay", 0),
        )
        return {
            "message_id": message.pk,
            "queue": queue,
            "sent_at": iso_z(message.sent_at),
            "visible_at": iso_z(message.visible_at),
        }

    @builtin_tool(
        description="Receive up to `max_messages` messages, each leased for `visibility_timeout` seconds (the "
        "queue's default, 30, when omitted): ack it before then or it is delivered again. `wait` (up to 20 s) "
        "waits for a message when none is there.",
        input_schema={
            "type": "object",
            "properties": {
                "queue": QUEUE,
                "max_messages": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH},
                "visibility_timeout": LEASE,
                "wait": {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
            },
            "required": ["queue"],
            "additionalProperties": False,
        },
        output_schema=MESSAGES,
    )
    async def receive(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        queue = check(ctx, "receive", arguments["queue"])
        room_id = ctx.caller.room_id
        loop = asyncio.get_running_loop()
        # Answer before the call's own deadline, with what there is (possibly nothing).
        give_up = loop.time() + min(arguments.get("wait", 0), max(0.0, ctx.remaining() - 0.5))
        interval = 0.05

        async def attempt() -> list[Any]:
            return await run_action(
                do_receive,
                room=room_id,
                queue=queue,
                consumer=ctx.caller.identity,
                max_messages=arguments.get("max_messages", 1),
                visibility_timeout=arguments.get("visibility_timeout"),
            )

        async with waiting_for(room_id, queue) as sent:
            while True:
                sent.clear()
                deliveries = await attempt()
                left = give_up - loop.time()
                if deliveries or left <= 0:
                    return {"messages": [delivery.to_record() for delivery in deliveries]}
                try:
                    await asyncio.wait_for(sent.wait(), timeout=min(interval, left))
                except TimeoutError:
                    interval = min(interval * 2, MAX_POLL_INTERVAL)

    @builtin_tool(
        description="Acknowledge a received message: it is done and deleted. Refused if the lease was lost "
        "(the message was delivered again since).",
        input_schema=LEASED,
        output_schema={"type": "object", "properties": {"acked": {"type": "boolean"}}, "required": ["acked"]},
    )
    async def ack(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        queue = check(ctx, "receive", arguments["queue"])
        await run_action(
            do_ack,
            room=ctx.caller.room_id,
            queue=queue,
            message_id=arguments["message_id"],
            receipt=arguments["receipt"],
        )
        return {"acked": True}

    @builtin_tool(
        description="Give a received message back after a failure: it is retried after `retry_delay` seconds "
        "(default: the queue's exponential backoff), or moves to `<queue>.dlq` with `error` once it has had the "
        "queue's maximum deliveries (5 by default).",
        input_schema=with_properties(LEASED, error={"type": "string", "maxLength": 4000}, retry_delay=SECONDS),
        output_schema={"type": "object", "properties": {"nacked": {"type": "boolean"}}, "required": ["nacked"]},
    )
    async def nack(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        queue = check(ctx, "receive", arguments["queue"])
        await run_action(
            do_nack,
            room=ctx.caller.room_id,
            queue=queue,
            message_id=arguments["message_id"],
            receipt=arguments["receipt"],
            error=arguments.get("error", ""),
            retry_delay=arguments.get("retry_delay"),
        )
        return {"nacked": True}

    @builtin_tool(
        description="Extend the lease on a received message (a heartbeat for long work): it stays invisible "
        "for `visibility_timeout` more seconds from now.",
        input_schema={
            **with_properties(LEASED, visibility_timeout=LEASE),
            "required": ["queue", "message_id", "receipt", "visibility_timeout"],
        },
        output_schema={"type": "object", "properties": {"visible_at": {"type": "string"}}, "required": ["visible_at"]},
    )
    async def extend(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        queue = check(ctx, "receive", arguments["queue"])
        visible_at = await run_action(
            do_extend,
            room=ctx.caller.room_id,
            queue=queue,
            message_id=arguments["message_id"],
            receipt=arguments["receipt"],
            visibility_timeout=arguments["visibility_timeout"],
        )
        return {"visible_at": iso_z(visible_at)}

    @builtin_tool(
        description="Look at the next messages of a queue in delivery order without receiving them.",
        input_schema={
            "type": "object",
            "properties": {"queue": QUEUE, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PEEK}},
            "required": ["queue"],
            "additionalProperties": False,
        },
        output_schema=MESSAGES,
    )
    async def peek(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        queue = check(ctx, "receive", arguments["queue"])
        messages = await sync_to_async(peek)(ctx.caller.room_id, queue, arguments.get("limit", 10))
        return {"messages": messages}

    @builtin_tool(
        description="A queue's sizes: visible, in_flight (leased), delayed (delay or retry backoff) and dead "
        "(in its .dlq).",
        input_schema={
            "type": "object",
            "properties": {"queue": QUEUE},
            "required": ["queue"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": COUNTS, "required": list(COUNTS)},
    )
    async def stats(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        queue = check_queue_name(arguments["queue"])
        grants = ctx.caller.grants
        if not (grants.may("queues", "send", queue) or grants.may("queues", "receive", queue)):
            raise permission_denied(f"this token may not see queue {queue!r}", queue=queue)
        return await sync_to_async(queue_stats)(ctx.caller.room_id, queue)

    @builtin_tool(
        description="The room's queues that this token may send to or receive from, with their sizes.",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        output_schema={
            "type": "object",
            "properties": {"queues": {"type": "array", "items": {"type": "object"}}},
            "required": ["queues"],
        },
    )
    async def list(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        grants = ctx.caller.grants
        queues = await sync_to_async(list_queues)(ctx.caller.room_id)
        visible = [
            q for q in queues if grants.may("queues", "send", q["name"]) or grants.may("queues", "receive", q["name"])
        ]
        return {"queues": visible}
