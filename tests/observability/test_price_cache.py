"""The price table is kept in memory per process (MESHSITE_PRICE_CACHE_SECONDS): no query per
usage once read, an edit in this process applies at once, one in another process within the TTL,
and a price scheduled ahead applies exactly from its time."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from observability.models import ModelPrice
from observability.pricing import find_price, forget_prices

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def cached_prices(settings):
    settings.MESHSITE_PRICE_CACHE_SECONDS = 60
    forget_prices()
    yield
    forget_prices()


def test_it_reads_the_table_once_then_prices_without_a_query(price):
    price("acme-chat", input_per_million="1")
    now = timezone.now()
    assert find_price("llm", "acme-chat", now) is not None
    with CaptureQueriesContext(connection) as queries:
        for _ in range(10):
            assert find_price("llm", "acme-chat", now).model == "acme-chat"
    assert len(queries) == 0


def test_a_price_saved_in_this_process_applies_at_once(price):
    price("acme-*", input_per_million="1")
    assert find_price("llm", "acme-chat", timezone.now()).model == "acme-*"
    price("acme-chat", input_per_million="2")  # more specific: wins as soon as it is saved
    assert find_price("llm", "acme-chat", timezone.now()).model == "acme-chat"
    ModelPrice.objects.get(model="acme-chat").delete()
    assert find_price("llm", "acme-chat", timezone.now()).model == "acme-*"


def test_a_price_written_elsewhere_applies_once_the_cache_expires(price, settings):
    price("acme-*", input_per_million="1")
    assert find_price("llm", "acme-chat", timezone.now()).model == "acme-*"
    # bulk_create sends no signal: what another process's write looks like to this one
    ModelPrice.objects.bulk_create([ModelPrice(model="acme-chat", effective_from=timezone.now() - timedelta(days=1))])
    assert find_price("llm", "acme-chat", timezone.now()).model == "acme-*"
    settings.MESHSITE_PRICE_CACHE_SECONDS = 0
    assert find_price("llm", "acme-chat", timezone.now()).model == "acme-chat"


def test_a_price_scheduled_ahead_applies_from_its_time_even_when_cached(price):
    now = timezone.now()
    price("acme-chat", input_per_million="1")
    price("acme-chat", input_per_million="3", effective_from=now + timedelta(hours=1))
    assert find_price("llm", "acme-chat", now).input_per_million == 1
    assert find_price("llm", "acme-chat", now + timedelta(hours=2)).input_per_million == 3
