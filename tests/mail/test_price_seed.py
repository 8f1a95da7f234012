"""The price outbound email is charged at, as migrated."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from observability.pricing import Amounts, price_usage


@pytest.mark.django_db
def test_outbound_email_has_a_seeded_price_per_message() -> None:
    for esp in ("smtp", "mailgun", "postmark"):
        price, cost = price_usage("email", esp, Amounts(quantity=1), datetime(2026, 1, 1, tzinfo=UTC))
        assert price is not None and price.unit == "message"
        assert cost == Decimal("0.001")
