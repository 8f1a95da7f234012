"""`usage.request_approval` over a real server: only the participant that reserved may ask; the
server asks only owners (the `usage.approve` grant on the budget's scope, from their token), never
the asker itself, and records who decided; a refusal releases the reservation."""

import asyncio
from decimal import Decimal

import pytest
from meshsite_client.protocol import ErrorCode

from observability.models import Budget, Reservation
from rooms.actions.rooms import do_create_room
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ROOM_OWNER = {"usage": {"approve": ["room"]}}
PROJECT_OWNER = {"usage": {"approve": ["project"]}}
# a person's tab: the browser client's private `ui` toolkit (static/meshsite/room.js)
UI_TOOLKIT = [
    {
        "name": "ask_user",
        "input_schema": {
            "type": "object",
            "properties": {"question": {"type": "string"}, "choices": {"type": "array", "items": {"type": "string"}}},
            "required": ["question"],
        },
    }
]


def db(function, *args, **kwargs):
    return asyncio.to_thread(function, *args, **kwargs)


async def reserve(peer: RawPeer, amount: str) -> dict:
    held = (await peer.invoke("usage", "reserve", {"amount": amount}))["result"]["output"]
    assert held["needs_approval"] is True, held
    return held


async def request_approval(peer: RawPeer, reservation_id: str, **extra) -> dict:
    return await peer.invoke("usage", "request_approval", {"reservation_id": reservation_id, **extra}, timeout=30)


async def test_over_a_project_budget_only_a_project_owner_is_asked(ws_url, mint, project):
    await db(Budget.objects.create, project=project, amount=Decimal("1"), period="day", hard=False)
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent,
        await RawPeer.connect(ws_url("lobby"), mint("bob")) as bob,
        await RawPeer.connect(ws_url("lobby"), mint("rita", grants=ROOM_OWNER)) as rita,
        await RawPeer.connect(ws_url("lobby"), mint("olga", grants=PROJECT_OWNER)),  # no ui: cannot be asked
    ):
        for person in (bob, rita):
            assert "result" in await person.register("ui", UI_TOOLKIT, public=False)
        held = await reserve(agent, "2")

        forged = await request_approval(bob, held["reservation_id"])
        assert forged["error"]["code"] == ErrorCode.PERMISSION_DENIED  # only the reserver asks

        outcome = (await request_approval(agent, held["reservation_id"]))["result"]["output"]
        assert (outcome["approved"], outcome["decision"], outcome["decided_by"], outcome["scope"]) == (
            False,
            "no_owner",
            None,
            "project",
        )
        assert "no owner who can approve it is in the room" in outcome["message"]
        assert not any(m.get("method") == "tools.call" for m in [*bob.inbox, *rita.inbox])
        again = await request_approval(agent, held["reservation_id"])
        assert again["error"]["code"] == ErrorCode.INVALID_PARAMS  # released: nothing left to approve
    reservation = await db(Reservation.objects.get, public_id=held["reservation_id"])
    assert (reservation.status, reservation.decision, reservation.approval_scope) == ("released", "no_owner", "project")


async def test_over_a_room_budget_a_room_owner_approves_and_it_is_recorded(ws_url, mint, project):
    room = await db(do_create_room, project, "lobby")
    await db(Budget.objects.create, project=project, room=room, amount=Decimal("1"), period="day", hard=False)
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("assistant", role="agent", agent="assistant")) as agent,
        await RawPeer.connect(ws_url("lobby"), mint("rita", grants=ROOM_OWNER)) as rita,
    ):
        assert "result" in await rita.register("ui", UI_TOOLKIT, public=False)
        within = (await agent.invoke("usage", "reserve", {"amount": "0.5"}))["result"]["output"]
        refused = await request_approval(agent, within["reservation_id"])
        assert refused["error"]["code"] == ErrorCode.INVALID_PARAMS  # within budget: nothing to approve

        held = await reserve(agent, "2")
        asking = asyncio.create_task(request_approval(agent, held["reservation_id"], reason="a long report"))
        ask = await rita.next_call(timeout=10)
        assert ask["params"]["caller"]["identity"] == "assistant"
        question = ask["params"]["arguments"]["question"]
        assert question.startswith("assistant wants to spend about 2 USD in room lobby, past the room lobby's daily")
        assert question.endswith("Their reason: a long report")
        await rita.answer(ask, {"answer": "Allow"})
        outcome = (await asking)["result"]["output"]
        assert (outcome["approved"], outcome["decision"], outcome["decided_by"]) == (
            True,
            "approved",
            {"id": rita.id, "identity": "rita"},
        )
        # asking again answers the recorded decision, without asking anyone
        assert (await request_approval(agent, held["reservation_id"]))["result"]["output"]["approved"] is True
        recorded = await agent.invoke(
            "usage", "record", {"kind": "llm", "model": "gpt-x", "reservation_id": held["reservation_id"]}
        )
        assert "result" in recorded
    reservation = await db(Reservation.objects.get, public_id=held["reservation_id"])
    assert (reservation.decision, reservation.decided_by, reservation.decided_by_id, reservation.status) == (
        "approved",
        "rita",
        rita.id,
        "settled",
    )


async def test_an_owner_cannot_approve_their_own_spending(ws_url, mint, project):
    await db(Budget.objects.create, project=project, amount=Decimal("1"), period="day", hard=False)
    async with await RawPeer.connect(ws_url("lobby"), mint("olga", grants=PROJECT_OWNER)) as olga:
        assert "result" in await olga.register("ui", UI_TOOLKIT, public=False)
        held = await reserve(olga, "2")
        outcome = (await request_approval(olga, held["reservation_id"]))["result"]["output"]
        assert outcome["decision"] == "no_owner"
        assert not any(m.get("method") == "tools.call" for m in olga.inbox)
