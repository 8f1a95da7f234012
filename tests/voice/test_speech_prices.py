"""The speech prices the voice app seeds (voice/migrations/0002), found as usage is priced."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from observability.models import ModelPrice
from observability.pricing import Amounts, price_usage

pytestmark = pytest.mark.django_db

seeding = importlib.import_module("voice.migrations.0002_seed_speech_prices")


def test_dated_transcribe_models_and_the_mini_tts_model_are_priced_per_minute():
    # run the seed as the migration does (a flushing test earlier in the session may have emptied the table)
    seeding.seed(apps, None)
    seeding.seed(apps, None)  # twice: no duplicates
    assert ModelPrice.objects.filter(source=seeding.SOURCE).count() == 3
    price, cost = price_usage("speech", "gpt-4o-mini-tts-2025-03-20", Amounts(quantity=2.0), timezone.now())
    assert price is not None and price.unit == "minute" and cost == Decimal("0.030")
    price, cost = price_usage("speech", "gpt-4o-transcribe-2025-06-01", Amounts(quantity=0.5), timezone.now())
    assert price is not None and cost == Decimal("0.003")
