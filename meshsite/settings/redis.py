"""Redis client options shared by the channel layer and the mesh bus."""

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def redis_retry_options(attempts: int) -> dict[str, Any]:
    """Reconnect-and-retry on connection errors, e.g. the stale connections a Redis restart leaves."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), attempts),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 10,
    }
