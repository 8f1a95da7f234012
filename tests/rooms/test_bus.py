"""The Redis bus between nodes, on a real Redis: messages queued in one event-loop tick leave in one
PUBLISH (a JSON array), in order; a node nobody listens for is reported at once; a single JSON
object (what nodes sent before batching) is still delivered."""

import asyncio
import json
import secrets
from typing import Any

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from rooms.mesh.bus import MAX_BATCH_BYTES, RedisBus
from tests.support.services import require

pytestmark = pytest.mark.asyncio


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                await asyncio.sleep(0.01)
        return self.messages


@pytest.fixture
async def nodes() -> Any:
    require("redis")
    prefix = f"test-bus-{secrets.token_hex(4)}"
    first, second = (
        RedisBus("first", settings.REDIS_URL, prefix, ttl=30),
        RedisBus("second", settings.REDIS_URL, prefix, ttl=30),
    )
    inbox = Inbox()
    await first.start(Inbox())
    await second.start(inbox)
    yield first, inbox
    await first.stop()
    await second.stop()


@pytest.fixture
async def raw() -> Any:
    """A plain Redis client: to watch a node's channel, or publish to it as another program would."""
    client = aioredis.from_url(settings.REDIS_URL)
    yield client
    await client.aclose()


async def test_messages_of_one_tick_leave_in_one_publish_and_in_order(nodes: Any, raw: Any) -> None:
    first, inbox = nodes
    watcher = raw.pubsub()
    await watcher.subscribe(first.channel("second"))
    assert (await watcher.get_message(timeout=2))["type"] == "subscribe"
    outcomes = [first.post("second", {"k": "progress", "i": i}) for i in range(20)]
    assert await asyncio.gather(*outcomes) == [True] * 20
    messages = await inbox.wait_for(20)
    assert [m["i"] for m in messages] == list(range(20))
    published = []
    async with asyncio.timeout(5):
        while (message := await watcher.get_message(timeout=0.3)) is not None or not published:
            if message is not None:
                published.append(json.loads(message["data"]))
    assert published == [[{"k": "progress", "i": i} for i in range(20)]]  # one PUBLISH for the twenty
    await watcher.aclose()


async def test_a_node_nobody_listens_for_is_reported_and_the_others_still_get_theirs(nodes: Any) -> None:
    first, inbox = nodes
    to_second, to_nobody = first.post("second", {"k": "notify", "n": 1}), first.post("gone", {"k": "notify", "n": 2})
    assert await to_second is True
    assert await to_nobody is False
    assert await first.publish("gone", {"k": "notify"}) is False
    assert [m["n"] for m in await inbox.wait_for(1)] == [1]


async def test_a_batch_over_the_size_limit_is_split_and_keeps_its_order(nodes: Any) -> None:
    first, inbox = nodes
    big = "x" * (MAX_BATCH_BYTES // 2)
    outcomes = [first.post("second", {"k": "notify", "i": i, "pad": big}) for i in range(5)]
    assert await asyncio.gather(*outcomes) == [True] * 5
    assert [m["i"] for m in await inbox.wait_for(5)] == list(range(5))


async def test_a_single_object_from_an_older_node_is_delivered_and_garbage_is_dropped(nodes: Any, raw: Any) -> None:
    first, inbox = nodes
    await raw.publish(first.channel("second"), "not json")
    await raw.publish(first.channel("second"), json.dumps([1, "two"]))
    await raw.publish(first.channel("second"), json.dumps({"k": "notify", "old": True}))
    first.post("second", {"k": "notify", "new": True})
    messages = await inbox.wait_for(2)
    assert messages == [{"k": "notify", "old": True}, {"k": "notify", "new": True}]


async def test_publishing_survives_a_dropped_connection(nodes: Any, raw: Any) -> None:
    first, inbox = nodes
    assert await first.publish("second", {"k": "notify", "n": 1}) is True
    # Redis closes the publishing connection (as a restart would): the next round reconnects.
    name = f"{first.prefix}:publisher:first"
    publishing = [client["id"] for client in await raw.client_list() if client.get("name") == name]
    assert len(publishing) == 1
    for client_id in publishing:
        await raw.client_kill_filter(_id=client_id)
    assert await first.publish("second", {"k": "notify", "n": 2}) is True
    assert [m["n"] for m in await inbox.wait_for(2)] == [1, 2]
