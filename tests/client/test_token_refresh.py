"""Token refresh over the live connection, against a real server (issue 7, defect 6).

A client given a token *provider* refreshes its token with `connection.refresh_token` before it
expires, so it never reaches close 4408 and keeps its participant id; so does an agent run by the
agent host, whose tokens live `MESHSITE_AGENT_TOKEN_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from meshsite_client import EventStream, RoomClient, Toolkit, tool
from meshsite_client.records import Event
from meshsite_client.refresh import RETRY_MAX, parse_expiry, refresh_delay, retry_delay

from agents.actions import do_create_service
from agents.models import Dispatch
from rooms.models import Project
from tests.support.servers import AgentHostProcess, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

TTL = 3  # seconds; tokens are minted in whole seconds, so each one lives 2-3 s
SPAN = 10.0  # seconds to stay connected: several expiries of a TTL-second token


@tool
async def add(a: float, b: float) -> float:
    return a + b


async def collect(stream: EventStream, seconds: float) -> list[Event]:
    """Every event of `stream` until `seconds` have passed."""
    events: list[Event] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            events.append(await asyncio.wait_for(anext(stream), left))
        except TimeoutError:
            break
    return events


async def test_the_refresh_comes_at_80_percent_of_the_lifetime_and_at_least_a_few_seconds_ahead():
    assert parse_expiry("2026-11-24T11:00:00Z") == datetime(2026, 11, 24, 11, tzinfo=UTC).timestamp()
    assert parse_expiry(None) is None and parse_expiry("soon") is None
    assert refresh_delay(3600) == 2880  # 12 minutes ahead
    assert refresh_delay(60) == 48
    assert refresh_delay(20) == 10  # 10 s ahead
    assert refresh_delay(3) == 1.5  # half the lifetime ahead when that is under 10 s
    assert refresh_delay(-30) == 1  # an expiry already past by the local clock: soon, but not in a loop
    # Backoff doubles up to a minute, but several attempts fit into what is left of a token's life.
    assert [retry_delay(n, 3600) <= min(RETRY_MAX, 2 ** (n - 1)) for n in range(1, 10)] == [True] * 9
    assert retry_delay(10, 3600) >= RETRY_MAX / 2
    assert retry_delay(10, 6) <= 2


async def test_a_token_provider_keeps_the_client_connected_with_the_same_participant_across_expiries(ws_url, mint):
    minted: list[str] = []

    def token() -> str:
        minted.append(mint("alice", ttl=TTL))
        return minted[-1]

    async with (
        RoomClient(ws_url("lobby"), mint("bob")) as bob,
        RoomClient(ws_url("lobby"), token) as alice,
    ):
        first_id, first_expiry = alice.participant.id, parse_expiry(alice.token_expires_at)
        assert first_expiry is not None and first_expiry - time.time() <= TTL
        await alice.register_toolkit(Toolkit("calc", [add]))
        seen_by_alice = alice.events()
        seen_by_bob = bob.events("participant.left", "participant.joined")

        events = await collect(seen_by_alice, SPAN)

        # Refreshed over and over, never dropped: no connection.lost/closing, no new room.ready.
        assert {e.method for e in events} == {"connection.token_refreshed"}
        expiries = [parse_expiry(e["token_expires_at"]) for e in events]
        assert len(expiries) >= SPAN / TTL and all(x is not None for x in expiries)
        assert expiries == sorted(expiries) and expiries[-1] > first_expiry + SPAN / 2
        assert len(minted) == len(events) + 1  # one token per refresh, none for a reconnect
        assert alice.connected and alice.participant.id == first_id
        assert alice.token_expires_at == events[-1]["token_expires_at"]
        # Still the same participant to the others, still hosting and calling tools.
        assert await collect(seen_by_bob, 0.1) == []
        assert bob.participants[first_id].identity == "alice"
        assert await bob.invoke("calc", "add", {"a": 2, "b": 3}, participant_id=first_id) == 5
        assert {p.id for p in await alice.list_participants()} == {first_id, bob.participant.id}


async def test_a_failing_provider_is_retried_with_backoff_before_the_token_expires(ws_url, mint):
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        if calls in (2, 3):  # the first two refresh attempts fail
            raise RuntimeError("the token service hiccupped")
        return mint("alice", ttl=TTL + 1)

    async with RoomClient(ws_url("lobby"), token) as alice:
        first_id = alice.participant.id
        events = alice.events()
        refreshed = await asyncio.wait_for(anext(events), TTL + 2)
        assert refreshed.method == "connection.token_refreshed" and calls == 4
        assert alice.participant.id == first_id and (await alice.ping())["pong"] is True


async def test_a_plain_token_is_not_refreshed_but_can_be_refreshed_by_hand(ws_url, mint):
    async with RoomClient(ws_url("lobby"), mint("alice", ttl=TTL)) as alice:
        first_id = alice.participant.id
        events = alice.events()
        expires_at = await alice.refresh_token(mint("alice", ttl=60))
        assert expires_at is not None and alice.token_expires_at == expires_at
        assert [e.method for e in await collect(events, TTL + 1)] == ["connection.token_refreshed"]
        assert alice.connected and alice.participant.id == first_id


@pytest.fixture
def slow_service(project: Project) -> Any:
    return do_create_service(project, "slow", class_path="tests.agents.sample_agents.Slow")


def dispatches_of(identity: str) -> list[Dispatch]:
    return list(Dispatch.objects.filter(identity=identity))


async def test_an_agent_run_by_the_agent_host_keeps_answering_across_token_expiries(
    server: ServerProcess, ws_url, mint, slow_service
):
    host = AgentHostProcess(server, env={"MESHSITE_AGENT_TOKEN_TTL": str(TTL)}).start()
    try:
        async with RoomClient(ws_url("lobby"), mint("alice")) as alice:
            called = await alice.invoke("agents", "call", {"name": "slow"}, timeout=20)
            agent_id = called["participant_id"]
            changes = alice.events("participant.joined", "participant.left")
            started = time.monotonic()

            # One ask in flight across several expiries of the agent's token ...
            long_ask = asyncio.create_task(
                alice.invoke("agents", "ask", {"agent": "slow", "arguments": {"seconds": SPAN}}, timeout=SPAN + 20)
            )
            # ... while short asks keep being answered all along.
            answered = 0
            while not long_ask.done():
                short = {"agent": "slow", "arguments": {"seconds": 0.5}}
                assert await alice.invoke("agents", "ask", short, timeout=20) == {"slept": 0.5}
                answered += 1
            assert await long_ask == {"slept": SPAN}
            assert time.monotonic() - started >= SPAN and answered >= SPAN / 2

            # The agent never left and came back: same participant, one dispatch, still running.
            assert await collect(changes, 0.1) == []
            [agent] = [p for p in await alice.list_participants() if p.identity == "slow"]
            assert agent.id == agent_id
            [dispatch] = await asyncio.to_thread(dispatches_of, "slow")
            assert (dispatch.status, dispatch.participant_id) == (Dispatch.Status.RUNNING, agent_id)
    finally:
        await asyncio.to_thread(host.stop)
