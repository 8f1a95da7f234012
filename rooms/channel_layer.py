"""channels-redis's pub/sub layer, scoped to this deployment's database, with a receive loop that
survives Redis trouble.

Scope: room groups are named after room primary keys (`room.<id>`), which are unique only within
one database. Deployments that share a Redis server and `MESHSITE_REDIS_PREFIX` but not a database
(concurrent test runs, each with its own test database; a dev and a staging site) would otherwise
share `room.1`, `room.2`, ...: each node would apply the other deployment's room events to its cache
and pass them on to its clients (strangers in the room, two `calc` toolkits). So every name this
layer gives Redis also carries a short hash of the database engine and name: `<prefix>.<hash>.`.
All nodes of one deployment use the same database name; the host is left out, since nodes may
reach one database by different addresses.

Receiving: channels-redis's receiver task (`_do_receiving`) re-raises `TimeoutError`; the task
would then end silently and the node never hear a room event again until it restarts. Here the
loop logs, waits and goes on; redis-py reconnects and resubscribes.
"""

import asyncio
import hashlib
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

logger = logging.getLogger(__name__)


def database_scope() -> str:
    """Eight hex digits naming the database this process uses (read when a loop's layer is made,
    so a test run sees its test database)."""
    database = settings.DATABASES[DEFAULT_DB_ALIAS]
    key = f"{database['ENGINE']}:{database['NAME']}"
    return hashlib.sha256(key.encode()).hexdigest()[:8]


class ResilientShardConnection(RedisSingleShardConnection):
    async def _do_receiving(self) -> None:
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("channel layer: receiving failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(0.5)


class ResilientRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """The layer proper lives per event loop (`RedisPubSubLoopLayer`); give each its database scope
    and resilient shard connections as it is made, before any of them has connected."""

    def _get_layer(self) -> Any:
        fresh = asyncio.get_running_loop() not in self._layers
        layer = super()._get_layer()
        if fresh:
            layer.prefix = f"{layer.prefix}.{database_scope()}."
            layer._shards = [ResilientShardConnection(shard.host, layer) for shard in layer._shards]
        return layer
