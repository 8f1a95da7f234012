"""A ChatBot turn past a soft budget: the server asks an owner (a participant whose token grants
`usage.approve`), never the asker; the decision is on the reservation and in the thread. Real
server, real sockets, the model a local server in OpenAI's wire format."""

from decimal import Decimal

import pytest

from observability.models import Budget, ModelPrice, Reservation
from tests.agents_client.live import running, until
from tests.agents_client.test_chatbot_live import agent_token, assistant, reply_from, start_thread
from tests.agents_client.test_chatbot_scenarios import UI_TOOLKIT, db, eventually
from tests.observability.conftest import LONG_AGO
from tests.support.fake_openai import fake_openai
from tests.support.peer import RawPeer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
__all__ = ["fake_openai"]

OWNER = {"usage": {"approve": ["project"]}}


def over_a_soft_budget(project) -> None:
    """A pricey model and a soft daily budget that any answer passes."""
    ModelPrice.objects.create(
        model="gpt-test",
        input_per_million=Decimal("1000"),
        output_per_million=Decimal("1000"),
        effective_from=LONG_AGO,
    )
    Budget.objects.create(project=project, amount=Decimal("0.0001"), period="day", hard=False)


def approval_part(message: dict) -> dict:
    [part] = [p for p in message["parts"] if p["type"] == "tool_call" and p["tool"] == "request_approval"]
    return part


@pytest.mark.parametrize("answer", ["Allow", "Deny"])
async def test_an_owner_decides_and_the_asker_is_never_asked(ws_url, mint, fake_openai, project, answer):
    await db(lambda: over_a_soft_budget(project))
    fake_openai.reply("Four.", usage=(30, 2))
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("carol", grants=OWNER)) as carol,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)) as bot,
    ):
        for person in (alice, carol):
            assert "result" in await person.register("ui", UI_TOOLKIT, public=False)
        await until(bot.agent.room, lambda: sum(tk.name == "ui" for tk in bot.agent.room.toolkits) == 2)
        await start_thread(alice, "What is 2 + 2?")

        ask = await carol.next_call(timeout=15)
        assert (ask["params"]["toolkit"], ask["params"]["tool"]) == ("ui", "ask_user")
        question = ask["params"]["arguments"]["question"]
        assert "assistant" in question and "soft budget of 0.0001 USD" in question and "room lobby" in question
        assert fake_openai.requests == []  # nothing is spent before the owner answers
        await carol.answer(ask, {"answer": answer})
        message = await reply_from(alice)

        assert not any(m.get("method") == "tools.call" for m in alice.inbox)  # the asker is not the approver
        part = approval_part(message)
        reservation = await eventually(
            lambda: Reservation.objects.get(project=project),
            lambda r: r.status != Reservation.Status.HELD,
        )
        assert (reservation.decided_by, reservation.decided_by_id) == ("carol", carol.id)
        if answer == "Allow":
            assert (part["status"], part["approved_by"]) == ("ok", "carol")
            assert message["parts"][0]["text"] == "Four."
            assert len(fake_openai.requests) == 1
            # the approval is bookkeeping: the model's history does not show it as its own tool call
            assert all(m["role"] != "tool" for m in fake_openai.requests[0].messages)
            assert (reservation.decision, reservation.status) == ("approved", "settled")
        else:
            assert (part["status"], part["refused_by"]) == ("refused", "carol")
            assert "soft budget, and carol did not approve it" in message["parts"][0]["text"]
            assert fake_openai.requests == []
            assert (reservation.decision, reservation.status) == ("denied", "released")


async def test_without_an_owner_present_the_turn_is_refused_in_the_thread(ws_url, mint, fake_openai, project):
    await db(lambda: over_a_soft_budget(project))
    fake_openai.reply("never sent")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        # bob calls himself an owner; only a token's grants make one
        await RawPeer.connect(ws_url("lobby"), mint("bob", attributes={"owner": True, "role": "owner"})) as bob,
        running(assistant(fake_openai), ws_url("lobby"), agent_token(mint)) as bot,
    ):
        for person in (alice, bob):
            assert "result" in await person.register("ui", UI_TOOLKIT, public=False)
        await until(bot.agent.room, lambda: sum(tk.name == "ui" for tk in bot.agent.room.toolkits) == 2)
        await start_thread(alice, "An expensive question")
        message = await reply_from(alice)

        text = message["parts"][0]["text"]
        assert text.startswith("I can't answer:")
        assert "soft budget, and no owner who can approve it is in the room" in text
        assert approval_part(message)["status"] == "refused"
        assert fake_openai.requests == []
        assert not any(m.get("method") == "tools.call" for m in [*alice.inbox, *bob.inbox])
    reservation = await db(lambda: Reservation.objects.get(project=project))
    assert (reservation.decision, reservation.decided_by, reservation.status) == ("no_owner", "", "released")


async def test_an_owner_who_does_not_answer_in_time_is_a_refusal(ws_url, mint, fake_openai, project):
    await db(lambda: over_a_soft_budget(project))
    fake_openai.reply("never sent")
    async with (
        await RawPeer.connect(ws_url("lobby"), mint("alice")) as alice,
        await RawPeer.connect(ws_url("lobby"), mint("carol", grants=OWNER)) as carol,
        running(assistant(fake_openai, approval_timeout=1.0), ws_url("lobby"), agent_token(mint)) as bot,
    ):
        assert "result" in await carol.register("ui", UI_TOOLKIT, public=False)
        await until(bot.agent.room, lambda: any(tk.name == "ui" for tk in bot.agent.room.toolkits))
        await start_thread(alice, "Anyone?")
        await carol.next_call(timeout=15)  # asked, and never answers
        message = await reply_from(alice)
        assert "soft budget, and no owner answered in time to approve it" in message["parts"][0]["text"]
        await carol.expect(lambda m: m.get("method") == "tools.cancelled", 5)  # the question is withdrawn
        assert fake_openai.requests == []
    reservation = await db(lambda: Reservation.objects.get(project=project))
    assert (reservation.decision, reservation.status) == ("unanswered", "released")
