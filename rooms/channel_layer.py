"""channels-redis's pub/sub layer, with a receive loop that survives Redis trouble.

Its receiver task (`_do_receiving`) re-raises `TimeoutError`; the task then ends silently and the
node never hears a room event again until it restarts (seen after a Redis restart or a node being
killed mid-traffic). Here the loop logs, waits and goes on; redis-py reconnects and resubscribes.
"""

import asyncio
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection

logger = logging.getLogger(__name__)


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
    """The layer proper lives per event loop (`RedisPubSubLoopLayer`); give each its resilient
    shard connections as it is made, before any of them has connected."""

    def _get_layer(self) -> Any:
        fresh = asyncio.get_running_loop() not in self._layers
        layer = super()._get_layer()
        if fresh:
            layer._shards = [ResilientShardConnection(shard.host, layer) for shard in layer._shards]
        return layer
