"""Billing in the admin: prices, budgets with % used, the cost report and its CSV."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from observability.models import Budget, Reservation, ToolCall, UsageRecord
from observability.pricing import Amounts
from observability.usage import SpentBy, record_usage
from rooms.models import Project, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_a_charged_price_cannot_be_edited_or_deleted(admin_client, price, who):
    charged = price(input_per_million="2")
    unused = price("acme-other", input_per_million="2")
    record_usage(who, kind="llm", model="acme-chat", amounts=Amounts(input_tokens=10))
    page = admin_client.get(f"/admin/observability/modelprice/{charged.pk}/change/").content.decode()
    assert 'name="input_per_million"' not in page
    assert admin_client.get(f"/admin/observability/modelprice/{charged.pk}/delete/").status_code == 403
    page = admin_client.get(f"/admin/observability/modelprice/{unused.pk}/change/").content.decode()
    assert 'name="input_per_million"' in page
    assert "acme-chat" in admin_client.get("/admin/observability/modelprice/").content.decode()


def test_unpriced_usage_shows_as_such_and_can_be_priced_later(admin_client, price, who):
    record = record_usage(who, kind="llm", model="mystery", amounts=Amounts(input_tokens=1_000_000))
    assert "unpriced" in admin_client.get("/admin/observability/usagerecord/").content.decode()
    price("mystery", input_per_million="3")
    admin_client.post(
        "/admin/observability/usagerecord/",
        {"action": "price_unpriced", "_selected_action": [record.pk]},
    )
    record.refresh_from_db()
    assert (record.priced, record.cost) == (True, Decimal("3"))


def test_the_budget_list_shows_spend_and_percent_used(admin_client, budget, who, project):
    budget("10", period="month")
    UsageRecord.objects.create(
        project=project, room_id=who.room_id, identity="a", kind="llm", model="m", cost=Decimal("8.5"), priced=True
    )
    page = admin_client.get("/admin/observability/budget/").content.decode()
    assert "8.5" in page and "85.0%" in page and "#ba2121" in page


def test_a_room_budget_must_be_a_room_of_its_project(admin_client, project):
    foreign = Room.objects.create(project=Project.objects.create(slug="other", name="Other"), name="lobby")
    response = admin_client.post(
        "/admin/observability/budget/add/",
        {"project": project.pk, "room": foreign.pk, "amount": "5", "period": "day", "hard": "on", "active": "on"},
    )
    assert response.status_code == 200 and "belongs to another project" in response.content.decode()
    assert not Budget.objects.exists()


def test_the_cost_report_and_its_csv(admin_client, who, project, budget):
    budget("1", room=Room.objects.get(pk=who.room_id))
    now = timezone.now()
    UsageRecord.objects.create(
        project=project,
        room_id=who.room_id,
        room_name="lobby",
        identity="assistant",
        agent="assistant",
        kind="llm",
        model="acme-chat",
        cost=Decimal("0.9"),
        priced=True,
        input_tokens=7,
        created_at=now,
    )
    page = admin_client.get("/admin/observability/costreport/", {"group": "agent", "per": "month"}).content.decode()
    assert "assistant" in page and "0.9" in page
    assert "Budgets at 80% or more" in page and "90.0%" in page
    response = admin_client.get(
        "/admin/observability/costreport/",
        {"group": "model", "per": "day", "project": project.pk, "format": "csv"},
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows == [
        {
            "day": now.astimezone(UTC).date().isoformat(),
            "model": "acme-chat",
            "cost": "0.9",
            "usage_cost": "0.9",
            "tool_cost": "0",
            "input_tokens": "7",
            "output_tokens": "0",
            "cached_tokens": "0",
            "quantity": "0.0",
            "records": "1",
            "unpriced": "0",
            "calls": "0",
            "currency": "USD",
        }
    ]
    old = admin_client.get("/admin/observability/costreport/", {"from": "2020-01-01", "to": "2020-01-31"})
    assert "Nothing was spent in this period" in old.content.decode()


def test_reservations_are_listed_and_can_be_released(admin_client, who):
    reservation = Reservation.objects.create(
        public_id="r_1",
        project_id=who.project_id,
        room_id=who.room_id,
        identity="assistant",
        amount=Decimal("1"),
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    assert "r_1" in admin_client.get("/admin/observability/reservation/").content.decode()
    admin_client.post("/admin/observability/reservation/", {"action": "release", "_selected_action": [reservation.pk]})
    reservation.refresh_from_db()
    assert reservation.status == "released"


def test_a_built_in_calls_spending_shows_on_its_row_in_the_tool_calls_list(admin_client, price, who, room):
    price("text-embedding-3-small", kind="embedding", input_per_million="0.02")
    row = {"project_id": room.project_id, "room": room, "room_name": room.name, "caller_id": "p_a"}
    row |= {"started_at": timezone.now(), "latency_ms": 1, "request_bytes": 1, "response_bytes": 1, "status": "ok"}
    ToolCall.objects.create(call_id="k_search", toolkit="rag", tool="search", **row)
    ToolCall.objects.create(call_id="k_list", toolkit="participants", tool="list", **row)
    by = SpentBy("k_search", "rag.search", "", "")
    for _ in range(2):
        record_usage(who, kind="embedding", model="text-embedding-3-small", amounts=Amounts(input_tokens=500), by=by)
    page = admin_client.get("/admin/observability/toolcall/").content.decode()
    assert "Usage it spent" in page
    assert page.count("0.00002 USD") == 1  # 2 x 500 tokens at 0.02 per million, on rag.search's row only
