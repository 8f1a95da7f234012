"""What the proxy refuses (bad credentials, another project's key, a spent budget) never reaches
the upstream; what the upstream refuses comes back as it was sent."""

import asyncio
import time
from decimal import Decimal

import httpx
import openai
import pytest

from observability.models import Budget, Reservation, UsageRecord
from rooms.actions.projects import do_create_api_key, do_create_project, do_revoke_api_key
from rooms.models import ApiKey, Room
from rooms.tokens import mint_token

from .conftest import wait_for_usage

pytestmark = [pytest.mark.e2e]

CHAT = {"model": "acme-chat", "messages": [{"role": "user", "content": "hi"}]}


def post(base_url: str, credential: str | None, body=CHAT, **headers: str) -> httpx.Response:
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    return httpx.post(f"{base_url}/chat/completions", json=body, headers=headers)


# --- upstream errors ----------------------------------------------------------------------------


def test_an_upstream_429_is_passed_through_with_its_body_and_retry_headers(base_url, upstream, api_key, project):
    upstream.error(429, "Rate limit reached for requests", retry_after=7)
    response = post(base_url, api_key)
    assert response.status_code == 429
    assert response.json() == {
        "error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-request-id"].startswith("req_")

    upstream.error(429, "Rate limit reached for requests")
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    with pytest.raises(openai.RateLimitError, match="Rate limit reached"):
        client.chat.completions.create(**CHAT)
    assert not UsageRecord.objects.exists()


def test_an_upstream_500_is_passed_through_and_its_reservation_released(base_url, upstream, api_key, project, prices):
    Budget.objects.create(project=project, amount=Decimal("10"), period="day")
    upstream.error(500, "The server had an error")
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    with pytest.raises(openai.InternalServerError, match="The server had an error") as raised:
        client.chat.completions.create(**CHAT, stream=True)
    assert raised.value.status_code == 500
    assert len(upstream.requests) == 1
    [reservation] = Reservation.objects.all()
    for _ in range(200):
        reservation.refresh_from_db()
        if reservation.status != Reservation.Status.HELD:
            break
        time.sleep(0.02)
    assert reservation.status == Reservation.Status.RELEASED
    assert not UsageRecord.objects.exists()


def test_an_unreachable_upstream_is_a_502_in_openai_shape(base_url, project):
    nowhere = do_create_project("nowhere")
    response = post(base_url, do_create_api_key(nowhere, "k")[1])
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_unavailable")
    assert response.headers["x-request-id"].startswith("req_")


# --- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-token",
        "Bearer msk_unknownkey",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    ],
)
def test_a_missing_or_bad_credential_is_401_and_never_forwarded(base_url, upstream, project, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = post(base_url, None, **headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert upstream.requests == []


def test_a_revoked_key_and_an_expired_token_are_401(base_url, upstream, project):
    key, raw = do_create_api_key(project, "short-lived")
    do_revoke_api_key(key)
    assert post(base_url, raw).status_code == 401
    token, _ = mint_token(project="acme", room="lab", identity="x", role="agent", ttl=1)
    time.sleep(2.1)
    response = post(base_url, token)
    assert (response.status_code, response.json()["error"]["message"]) == (401, "token expired")
    assert upstream.requests == []


def test_the_openai_client_raises_authentication_error(base_url, upstream, project):
    client = openai.OpenAI(base_url=base_url, api_key="msk_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="unknown or revoked API key"):
        client.chat.completions.create(**CHAT)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_a_user_token_may_not_spend_the_projects_model_budget(base_url, upstream, mint):
    response = post(base_url, mint("alice", role="user", room="lab"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert upstream.requests == []


def test_a_foreign_projects_key_is_refused_and_charged_to_nobody(base_url, upstream, project, other_key, api_key):
    # a key of project "other" used for project "acme"
    response = post(base_url, other_key, **{"X-Meshsite-Project": "acme"})
    assert response.status_code == 403
    assert response.json()["error"] == {
        "message": "this credential belongs to project 'other', not 'acme'",
        "type": "permission_denied",
        "param": None,
        "code": "permission_denied",
    }
    # and an acme token with "other" named
    agent = mint_token(project="acme", room="lab", identity="r", role="agent")[0]
    assert post(base_url, agent, **{"X-Meshsite-Project": "other"}).status_code == 403
    assert upstream.requests == []
    assert not UsageRecord.objects.exists()
    # naming its own project is fine
    upstream.reply("ok", usage=(1, 1))
    assert post(base_url, api_key, **{"X-Meshsite-Project": "acme"}).status_code == 200
    wait_for_usage(project=project)


def test_a_projects_key_is_charged_to_its_own_project_and_goes_to_its_own_upstream(
    base_url, upstream, other_upstream, project, other_project, other_key
):
    other_upstream.reply("from the other upstream", usage=(3, 4))
    response = post(base_url, other_key)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from the other upstream"
    assert other_upstream.last_request.headers["authorization"] == "Bearer sk-other-upstream"
    assert upstream.requests == []
    [record] = wait_for_usage(project=other_project)
    assert (record.identity, record.input_tokens) == ("api-key:other-tests", 3)
    assert not UsageRecord.objects.filter(project=project).exists()
    assert ApiKey.objects.get(project=other_project).last_used_at is not None


def test_a_body_that_is_not_a_json_object_is_400(base_url, upstream, api_key):
    response = httpx.post(
        f"{base_url}/chat/completions", content=b"[1, 2", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{base_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"}).status_code == 405
    assert upstream.requests == []


def test_a_body_over_the_limit_is_413(base_url, upstream, api_key):
    response = post(base_url, api_key, body={**CHAT, "padding": "x" * 300_000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert upstream.requests == []


def test_the_proxy_is_served_as_configured(base_url, proxy_server, upstream, api_key):
    """Through Django, its middleware's headers are on the answer; mounted ahead of it, not."""
    response = post(base_url, None)
    assert response.status_code == 401
    assert ("x-frame-options" in response.headers) is (proxy_server.mode == "django")


# --- budgets ------------------------------------------------------------------------------------


def test_over_a_hard_budget_the_request_is_429_and_the_upstream_never_sees_it(
    base_url, upstream, project, agent_token, prices
):
    # 1000 output tokens (MESHSITE_PROXY_DEFAULT_OUTPUT_TOKENS in these tests) at 10.00 per million
    # alone are 0.01: more than this budget has
    Budget.objects.create(project=project, amount=Decimal("0.005"), period="day")
    response = post(base_url, agent_token, body={**CHAT, "stream": True})
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("budget_exceeded", "budget_exceeded", None)
    assert error["message"].startswith("budget exceeded: the project's daily budget of 0.005 USD has 0.005 USD left")
    assert (error["limit"], error["spent"], error["held"], error["scope"], error["period"]) == (
        "0.005",
        "0",
        "0",
        "project",
        "day",
    )
    assert error["requested"] == "0.0100175"  # 7 prompt tokens (estimated) at 2.50 + 1000 at 10.00 per million
    assert error["resets_at"].endswith("Z")

    client = openai.OpenAI(base_url=base_url, api_key=agent_token)  # default retries: not used on this 429
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(**CHAT)
    assert raised.value.code == "budget_exceeded"
    assert upstream.requests == []
    assert not Reservation.objects.exists()

    # a request whose max_tokens fits the budget goes through, reserved then settled
    upstream.reply("short", usage=(8, 2))
    answer = client.chat.completions.create(**CHAT, max_tokens=100)
    assert answer.choices[0].message.content == "short"
    [record] = wait_for_usage(project=project)
    assert record.reservation.status == Reservation.Status.SETTLED
    assert record.reservation.amount == Decimal("0.0010175")  # 7 * 2.50 + 100 * 10.00 per million


def test_a_room_budget_used_up_stops_that_rooms_agents(base_url, upstream, project, agent_token, mint, prices):
    lab = Room.objects.create(project=project, name="lab")
    Budget.objects.create(project=project, room=lab, amount=Decimal("0"), period="month")
    assert post(base_url, agent_token).status_code == 429
    elsewhere = mint("writer", role="agent", agent="writer", room="lobby")
    upstream.reply("ok", usage=(1, 1))
    assert post(base_url, elsewhere).status_code == 200
    assert len(upstream.requests) == 1
    [record] = wait_for_usage(project=project)
    assert record.room_name == "lobby"


def test_past_a_soft_budget_the_request_goes_through_flagged(base_url, upstream, project, agent_token, prices):
    Budget.objects.create(project=project, amount=Decimal("0.000001"), period="day", hard=False)
    upstream.reply("ok", usage=(1, 1))
    assert post(base_url, agent_token).status_code == 200
    [record] = wait_for_usage(project=project)
    assert record.metadata["needs_approval"] is True
    assert record.reservation.needs_approval is True


def test_concurrent_requests_against_a_nearly_spent_budget_never_reserve_past_it(
    base_url, upstream, project, agent_token, prices
):
    # each request reserves 7 * 2.50 + 100 * 10.00 per million = 0.0010175: three fit in 0.0036
    Budget.objects.create(project=project, amount=Decimal("0.0036"), period="day")
    for _ in range(10):
        upstream.reply("ok", usage=(8, 2), delay=0.5)  # the admitted ones hold their reservations meanwhile
    body = {**CHAT, "max_tokens": 100}

    async def everyone() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"{base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {agent_token}"}
                    )
                    for _ in range(10)
                )
            )
        return sorted(response.status_code for response in responses)

    assert asyncio.run(everyone()) == [200] * 3 + [429] * 7
    assert len(upstream.requests) == 3
    records = wait_for_usage(3, project=project)
    assert {record.reservation.status for record in records} == {Reservation.Status.SETTLED}
    assert Reservation.objects.count() == 3
