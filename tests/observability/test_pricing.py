"""Prices: which row applies to a usage, and what the usage costs (hand-computed figures)."""

import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils import timezone

from observability.models import ModelPrice, UsageRecord
from observability.money import BadAmount, parse_money
from observability.pricing import Amounts, cost_of, find_price, reported_cost
from observability.usage import record_usage, reprice

pytestmark = pytest.mark.django_db


def test_cost_is_uncached_input_plus_cached_input_plus_output_per_million(price):
    chat = price(input_per_million="2.50", cached_input_per_million="1.25", output_per_million="10.00")
    # (12_345 - 2_345) * 2.50 + 2_345 * 1.25 + 678 * 10.00 = 25_000 + 2_931.25 + 6_780 = 34_711.25 per million
    assert cost_of(chat, Amounts(input_tokens=12_345, cached_tokens=2_345, output_tokens=678)) == Decimal("0.03471125")


def test_cached_tokens_cost_the_input_price_when_the_model_has_no_cached_price(price):
    chat = price(input_per_million="0.15", output_per_million="0.60")
    assert cost_of(chat, Amounts(input_tokens=1_000_000, cached_tokens=400_000)) == Decimal("0.15")


def test_a_cost_is_rounded_half_up_to_a_billionth_once_at_the_end(price):
    chat = price(input_per_million="0.0015")
    assert cost_of(chat, Amounts(input_tokens=1)) == Decimal("0.000000002")  # 1.5e-9
    assert cost_of(chat, Amounts(input_tokens=3)) == Decimal("0.000000005")  # 4.5e-9, not 3 x 2e-9


def test_non_token_usage_costs_its_quantity_times_the_unit_price(price):
    whisper = price("acme-listen", kind="speech", unit_price="0.006", unit="minute")
    voice = price("acme-voice", kind="speech", unit_price="0.000015", unit="character")
    assert cost_of(whisper, Amounts(quantity=2.5)) == Decimal("0.015")
    assert cost_of(voice, Amounts(quantity=1234)) == Decimal("0.01851")


def test_an_exact_name_beats_a_pattern_and_a_longer_pattern_a_shorter_one(price):
    price("acme*", input_per_million="1")
    price("acme-chat*", input_per_million="2")
    price("acme-chat-2024-01-01", input_per_million="3")
    now = timezone.now()
    assert find_price("llm", "acme-chat-2024-01-01", now).input_per_million == 3
    assert find_price("llm", "acme-chat-2025-06-01", now).input_per_million == 2
    assert find_price("llm", "acme-other", now).input_per_million == 1
    assert find_price("llm", "nothing-like-it", now) is None
    assert find_price("embedding", "acme-chat-2025-06-01", now) is None  # prices are per kind


def test_a_provider_prefixed_name_matches_its_model_and_provider(price):
    price("acme-chat*", provider="acme", input_per_million="2")
    now = timezone.now()
    assert find_price("llm", "acme/acme-chat-x", now).input_per_million == 2
    assert find_price("llm", "other/acme-chat-x", now) is None


def test_prices_not_yet_in_effect_or_in_another_currency_do_not_apply(price):
    price("acme-chat", input_per_million="1")
    price("acme-chat", input_per_million="9", effective_from=timezone.now() + timedelta(days=1))
    price("acme-euro", input_per_million="1", currency="EUR")
    assert find_price("llm", "acme-chat", timezone.now()).input_per_million == 1
    assert find_price("llm", "acme-euro", timezone.now()) is None
    with pytest.raises(ValidationError, match="USD"):
        ModelPrice(model="acme-euro", currency="EUR").full_clean()


def test_a_price_change_between_two_calls_never_rewrites_the_first(price, who):
    usage = Amounts(input_tokens=12_345, cached_tokens=2_345, output_tokens=678)
    first_price = price(input_per_million="2.50", cached_input_per_million="1.25", output_per_million="10.00")
    first = record_usage(who, kind="llm", model="acme-chat", amounts=usage)
    second_price = price(
        input_per_million="3.00",
        cached_input_per_million="0.30",
        output_per_million="12.00",
        effective_from=timezone.now(),
    )
    second = record_usage(who, kind="llm", model="acme-chat", amounts=usage)
    first.refresh_from_db()
    assert (first.cost, first.price, first.priced) == (Decimal("0.03471125"), first_price, True)
    # 10_000 * 3.00 + 2_345 * 0.30 + 678 * 12.00 = 30_000 + 703.5 + 8_136 = 38_839.5 per million
    assert (second.cost, second.price, second.priced) == (Decimal("0.0388395"), second_price, True)


def test_an_unknown_model_is_recorded_with_its_tokens_unpriced_and_priced_later(price, who):
    record = record_usage(who, kind="llm", model="mystery-1", amounts=Amounts(input_tokens=1_000, output_tokens=500))
    assert (record.priced, record.cost, record.price, record.input_tokens) == (False, 0, None, 1_000)
    assert record.to_record()["priced"] is False
    price("mystery-*", input_per_million="1", output_per_million="2")
    assert reprice(UsageRecord.objects.all()) == 1
    record.refresh_from_db()
    assert (record.priced, record.cost) == (True, Decimal("0.002"))  # (1_000 * 1 + 500 * 2) / 1e6
    assert reprice(UsageRecord.objects.all()) == 0  # priced records are never touched again


def test_common_models_are_seeded_with_their_dated_versions():
    if not ModelPrice.objects.filter(source__contains="seeded").exists():  # a transactional test flushed it
        importlib.import_module("observability.migrations.0005_seed_prices").seed(apps, None)
    now = timezone.now()
    mini = find_price("llm", "gpt-4o-mini-2024-07-18", now)
    assert (mini.model, mini.input_per_million, mini.cached_input_per_million, mini.output_per_million) == (
        "gpt-4o-mini*",
        Decimal("0.15"),
        Decimal("0.075"),
        Decimal("0.60"),
    )
    assert find_price("llm", "gpt-4o", now).output_per_million == Decimal("10")
    assert find_price("llm", "gpt-4.1-nano-2025-04-14", now).input_per_million == Decimal("0.10")
    assert find_price("llm", "o4-mini", now).output_per_million == Decimal("4.40")
    assert find_price("embedding", "text-embedding-3-small", now).input_per_million == Decimal("0.02")
    assert find_price("embedding", "text-embedding-3-large", now).input_per_million == Decimal("0.13")
    assert "2025-08-07" in mini.source


@pytest.mark.parametrize(
    ("value", "amount"), [("0.0125", "0.0125"), (3, "3"), (0.1, "0.1"), ("1e-3", "0.001"), (" 2.5 ", "2.5")]
)
def test_money_comes_as_a_decimal_string_or_a_number(value, amount):
    assert parse_money(value) == Decimal(amount)


@pytest.mark.parametrize("value", [True, None, [1], "abc", "-1", -0.5, "NaN", "Infinity", 1e12, ""])
def test_anything_else_is_not_money(value):
    with pytest.raises(BadAmount):
        parse_money(value)


def test_a_hosts_meta_is_taken_off_its_output_and_its_cost_read():
    assert reported_cost({"seat": "12A", "_meta": {"cost": "0.25"}}) == ({"seat": "12A"}, Decimal("0.25"), None)
    assert reported_cost({"_meta": {"note": 1}}) == ({}, Decimal(0), None)
    assert reported_cost({"_meta": "x", "a": 1}) == ({"a": 1}, Decimal(0), None)
    assert reported_cost([1, {"_meta": {"cost": 1}}]) == ([1, {"_meta": {"cost": 1}}], Decimal(0), None)
    assert reported_cost(3) == (3, Decimal(0), None)
    output, cost, problem = reported_cost({"a": 1, "_meta": {"cost": "-1"}})
    assert (output, cost) == ({"a": 1}, Decimal(0)) and "_meta.cost" in problem
