"""Point-to-point messages between server nodes, and which nodes are alive.

`LocalBus` serves the embedded default (one node: nothing to send anywhere). `RedisBus` gives each
node one pub/sub channel: a call to a session on another node is one PUBLISH to that node's
channel, and PUBLISH's receiver count tells at once when the node is gone. Liveness is a sorted set
of node heartbeats.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import redis
import redis.asyncio as aioredis

from meshsite.settings.redis import redis_retry_options

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Bus:
    ttl = 0.0

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        # when the bus last (re)connected: liveness data older than that may be incomplete
        self.healthy_since = time.monotonic()
        self.on_reconnect: Callable[[], Coroutine[Any, Any, None]] | None = None

    async def start(self, handler: Handler) -> None:
        """Starts delivering messages addressed to this node to `handler`."""

    async def publish(self, node_id: str, message: Mapping[str, Any]) -> bool:
        """Sends to another node; False when no such node is listening."""
        return False

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
        self.reader: asyncio.Task[None] | None = None
        self.handler: Handler | None = None
        self.subscribed = asyncio.Event()
        self.resync_task: asyncio.Task[None] | None = None

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
                async for raw in pubsub.listen():
                    if raw.get("type") != "message":
                        continue
                    await self._deliver(raw["data"])
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("bus: lost Redis (%s); resubscribing in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                await pubsub.aclose()

    async def _deliver(self, data: bytes) -> None:
        assert self.handler is not None
        try:
            message = json.loads(data)
        except ValueError:
            logger.error("bus: dropped a message that is not JSON")
            return
        try:
            await self.handler(message)
        except Exception:
            logger.exception("bus: handler failed on %s", message.get("k"))

    async def publish(self, node_id: str, message: Mapping[str, Any]) -> bool:
        try:
            receivers = await self.redis.publish(self.channel(node_id), json.dumps(message))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            logger.warning("bus: publish to %s failed: %s", node_id, exc)
            return False
        return bool(receivers)

    async def heartbeat(self) -> None:
        await self.redis.zadd(self.nodes_key, {self.node_id: time.time()})

    async def alive_nodes(self) -> set[str]:
        since = time.time() - self.ttl
        await self.redis.zremrangebyscore(self.nodes_key, "-inf", since)
        members = await self.redis.zrangebyscore(self.nodes_key, since, "+inf")
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members} | {self.node_id}

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        with contextlib.suppress(redis.ConnectionError, OSError):
            await self.redis.zrem(self.nodes_key, self.node_id)
        await self.redis.aclose()

    def forget_sync(self) -> None:
        try:
            client = redis.Redis.from_url(self.url, socket_timeout=2)
            client.zrem(self.nodes_key, self.node_id)
            client.close()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            logger.warning("bus: could not unregister node %s at exit", self.node_id)
