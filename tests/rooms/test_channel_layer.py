"""The Redis channel layer is scoped to the deployment's database (rooms/channel_layer.py).

Room groups are named after room primary keys. Two test runs that shared a Redis server and
`MESHSITE_REDIS_PREFIX` but had their own test databases once shared `room.2`: each run's nodes got
the other's room events, and a room held strangers (the "ghosts" of test_reconnect's crash test).
"""

import asyncio

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from rooms.channel_layer import ResilientRedisPubSubChannelLayer, database_scope


def layer_on(monkeypatch: pytest.MonkeyPatch, database_name: str) -> ResilientRedisPubSubChannelLayer:
    """The layer a node on `database_name` makes (the scope is read when the loop's layer is made)."""
    layer = ResilientRedisPubSubChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    with monkeypatch.context() as patch:
        patch.setitem(settings.DATABASES[DEFAULT_DB_ALIAS], "NAME", database_name)
        layer._get_layer()
    return layer


@pytest.mark.redis
@pytest.mark.asyncio
async def test_nodes_on_other_databases_do_not_share_room_groups_even_with_one_redis_prefix(monkeypatch):
    ours, same, other = (layer_on(monkeypatch, name) for name in ("meshsite_a", "meshsite_a", "meshsite_b"))
    try:
        channel = await ours.new_channel("node.")
        await ours.group_add("room.1", channel)
        await same.group_send("room.1", {"type": "room.event", "n": 1})
        assert (await asyncio.wait_for(ours.receive(channel), 5))["n"] == 1  # subscribed by now

        await other.group_send("room.1", {"type": "room.event", "n": 2})  # another deployment's room 1
        await same.group_send("room.1", {"type": "room.event", "n": 3})
        assert (await asyncio.wait_for(ours.receive(channel), 5))["n"] == 3
    finally:
        for layer in (ours, same, other):
            await layer.flush()


def test_the_scope_is_the_database_engine_and_name_not_the_address(monkeypatch):
    database = settings.DATABASES[DEFAULT_DB_ALIAS]
    scope = database_scope()
    assert len(scope) == 8
    monkeypatch.setitem(database, "HOST", "another-address-of-the-same-server")
    assert database_scope() == scope  # nodes may reach one database by different addresses
    monkeypatch.setitem(database, "NAME", f"{database['NAME']}-elsewhere")
    assert database_scope() != scope
