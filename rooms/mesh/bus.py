"""Point-to-point messages between server nodes, and which nodes are alive.

`LocalBus` serves the embedded default (one node: nothing to send anywhere). `RedisBus` gives each
node one pub/sub channel. Messages are queued with `post` and sent once per event-loop tick: all
the messages queued for one node go in one PUBLISH of a JSON array (every node's PUBLISH in one
round trip), so a node under load pays one write and one reply per tick, not one per call. While a
batch is in flight the next one collects, and batches leave one at a time, so the messages between
two nodes keep their order. PUBLISH's receiver count tells at once when the node is gone. Liveness
is a sorted set of node heartbeats.
"""

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from meshsite.settings.redis import redis_retry_options

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]
Queued = list[tuple[str, "asyncio.Future[bool]"]]  # encoded messages, each with the future `post` returned
# A PUBLISH holds at most about this many bytes of messages (a larger message goes alone): batches
# stay far below Redis's limits and no one write holds the event loop for long.
MAX_BATCH_BYTES = 1024 * 1024
# Bound on one round of PUBLISHes, the socket timeout redis-py would otherwise apply per command.
PUBLISH_SECONDS = 5.0


class Bus:
    ttl = 0.0

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        # when the bus last (re)connected: liveness data older than that may be incomplete
        self.healthy_since = time.monotonic()
        self.on_reconnect: Callable[[], Coroutine[Any, Any, None]] | None = None

    async def start(self, handler: Handler) -> None:
        """Starts delivering messages addressed to this node to `handler`."""

    def post(self, node_id: str, message: Mapping[str, Any]) -> "asyncio.Future[bool]":
        """Queues a message for another node without waiting; the future says whether a node
        received it (False when no such node is listening or Redis is unreachable)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.set_result(False)
        return future

    async def publish(self, node_id: str, message: Mapping[str, Any]) -> bool:
        """Sends to another node and waits for the outcome; False when no such node is listening."""
        return await self.post(node_id, message)

    async def heartbeat(self) -> None:
        """Marks this node alive for the next `ttl` seconds."""

    async def alive_nodes(self) -> set[str]:
        return {self.node_id}

    async def stop(self) -> None:
        pass

    def forget_sync(self) -> None:
        """At interpreter exit: stop counting this node as alive, without an event loop."""


class LocalBus(Bus):
    """One node per process and nothing beyond it."""


class RedisBus(Bus):
    def __init__(self, node_id: str, url: str, prefix: str, ttl: float) -> None:
        super().__init__(node_id)
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        # One retry: enough to replace a connection a Redis restart left stale, short enough that
        # a call to an unreachable node fails fast instead of waiting out a backoff.
        self.redis = aioredis.from_url(url, decode_responses=False, **redis_retry_options(attempts=1))
        # PUBLISHes go on a connection of their own, one round at a time, written and read
        # directly: redis-py's client path (pool, retry wrapper, a task per command for the socket
        # timeout) cost more CPU than the rest of routing a call. One timeout bounds each round.
        # (named, so an operator can tell it apart in CLIENT LIST)
        self.publisher = aioredis.ConnectionPool.from_url(
            url, socket_timeout=None, client_name=f"{prefix}:publisher:{node_id}"
        ).make_connection()
        self.reader: asyncio.Task[None] | None = None
        self.handler: Handler | None = None
        self.subscribed = asyncio.Event()
        self.resync_task: asyncio.Task[None] | None = None
        self.outbox: dict[str, Queued] = {}  # node id -> messages not sent yet
        self.sender: asyncio.Task[None] | None = None

    def channel(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    @property
    def nodes_key(self) -> str:
        return f"{self.prefix}:nodes"

    async def start(self, handler: Handler) -> None:
        self.handler = handler
        self.reader = asyncio.create_task(self._read_forever(), name=f"bus-reader-{self.node_id}")
        await asyncio.wait_for(self.subscribed.wait(), timeout=10)
        await self.heartbeat()

    async def _read_forever(self) -> None:
        # Resubscribes after Redis restarts; messages published meanwhile are lost, which the
        # router turns into timeouts, never hangs.
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel(self.node_id))
                self.healthy_since = time.monotonic()
                if self.subscribed.is_set() and self.on_reconnect is not None:
                    await self.heartbeat()
                    self.resync_task = asyncio.create_task(self.on_reconnect())
                self.subscribed.set()
                delay = 0.1
                await self._read_messages(pubsub)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("bus: lost Redis (%s); resubscribing in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                await pubsub.aclose()

    async def _read_messages(self, pubsub: PubSub) -> None:
        # Straight from the subscribed connection: PubSub.listen's layers (a retry wrapper, a
        # health check, a dict per message) cost more than handling the message. A lost
        # connection raises, and _read_forever subscribes anew and reloads the room caches.
        connection = pubsub.connection
        assert connection is not None
        while True:
            response = await connection.read_response(timeout=math.inf, disconnect_on_error=False, push_request=True)
            # [b"message", channel, data]; subscription confirmations are the other replies
            if isinstance(response, list) and len(response) == 3 and response[0] == b"message":
                await self._deliver(response[2])

    async def _deliver(self, data: bytes) -> None:
        assert self.handler is not None
        try:
            decoded = json.loads(data)
        except ValueError:
            logger.error("bus: dropped a message that is not JSON")
            return
        # a batch (a JSON array); a single object is what nodes sent before batching
        for message in decoded if isinstance(decoded, list) else [decoded]:
            if not isinstance(message, dict):
                logger.error("bus: dropped a message that is not an object")
                continue
            try:
                await self.handler(message)
            except Exception:
                logger.exception("bus: handler failed on %s", message.get("k"))

    def post(self, node_id: str, message: Mapping[str, Any]) -> "asyncio.Future[bool]":
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Encoded now, so a message that is not JSON fails its sender, not the whole batch.
        self.outbox.setdefault(node_id, []).append((json.dumps(message), future))
        if self.sender is None:
            self.sender = asyncio.create_task(self._send_queued(), name=f"bus-sender-{self.node_id}")
        return future

    async def _send_queued(self) -> None:
        # Started by a tick's first post and run after that tick's callbacks, so it takes all the
        # tick queued; what is queued while a batch is in flight goes in the next one.
        batches: list[tuple[str, Queued]] = []
        try:
            while self.outbox:
                outbox, self.outbox = self.outbox, {}
                batches = [(node_id, batch) for node_id, queued in outbox.items() for batch in _batches(queued)]
                try:
                    receivers = await self._publish(batches)
                except (redis.RedisError, OSError) as exc:
                    logger.warning("bus: publish to %s failed: %s", ", ".join(outbox), exc)
                    receivers = [0] * len(batches)
                for (_, batch), count in zip(batches, receivers, strict=True):
                    for _, future in batch:
                        future.set_result(bool(count))
                batches = []
        finally:
            self.sender = None
            # Only a cancelled sender leaves any: nobody may wait forever for an outcome.
            for _, batch in batches:
                for _, future in batch:
                    if not future.done():
                        future.set_result(False)

    async def _publish(self, batches: list[tuple[str, Queued]]) -> list[int]:
        """One PUBLISH per batch, all in one round trip; the receiver count of each."""
        payloads = [(self.channel(node), "[" + ",".join(text for text, _ in batch) + "]") for node, batch in batches]
        packed = self.publisher.pack_commands([("PUBLISH", channel, payload) for channel, payload in payloads])
        # A timeout cancels the write or read, and redis-py then drops the connection, so no late
        # reply can be taken for the next round's. A connection a Redis restart left stale fails
        # once and is replaced (the one retry the other clients have too).
        async with asyncio.timeout(PUBLISH_SECONDS):
            try:
                return await self._round(packed, len(payloads))
            except redis.ConnectionError:
                await self.publisher.disconnect(nowait=True)
                return await self._round(packed, len(payloads))

    async def _round(self, packed: list[bytes], count: int) -> list[int]:
        try:
            await self.publisher.send_packed_command(packed, check_health=False)
            return [int(await self.publisher.read_response()) for _ in range(count)]
        except BaseException:
            # whatever went wrong, replies may be left unread: never read them as the next round's
            await self.publisher.disconnect(nowait=True)
            raise

    async def heartbeat(self) -> None:
        await self.redis.zadd(self.nodes_key, {self.node_id: time.time()})

    async def alive_nodes(self) -> set[str]:
        since = time.time() - self.ttl
        await self.redis.zremrangebyscore(self.nodes_key, "-inf", since)
        members = await self.redis.zrangebyscore(self.nodes_key, since, "+inf")
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members} | {self.node_id}

    async def stop(self) -> None:
        if self.sender is not None:
            with contextlib.suppress(Exception):
                await self.sender  # what was queued before the stop still goes out
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        with contextlib.suppress(redis.ConnectionError, OSError):
            await self.redis.zrem(self.nodes_key, self.node_id)
        await self.redis.aclose()
        await self.publisher.disconnect()

    def forget_sync(self) -> None:
        try:
            client = redis.Redis.from_url(self.url, socket_timeout=2)
            client.zrem(self.nodes_key, self.node_id)
            client.close()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            logger.warning("bus: could not unregister node %s at exit", self.node_id)


def _batches(queued: Queued) -> list[Queued]:
    """Splits one node's queued messages into PUBLISH-sized runs, in order."""
    batches: list[Queued] = [[]]
    size = 0
    for item in queued:
        if batches[-1] and size + len(item[0]) > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += len(item[0]) + 1
    return batches
