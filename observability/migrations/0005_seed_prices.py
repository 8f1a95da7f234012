"""Seeds the price table with public list prices of common models.

The figures are OpenAI's standard-tier list prices as published on 2025-08-07 (the seed date,
also their `effective_from`), in USD: per million tokens for LLMs and embeddings (input, cached
input, output), per minute of audio or per character for speech. They are a starting point:
check them against the provider's pricing page and add a row (a later `effective_from`) where
they have changed. Servers whose MESHSITE_CURRENCY is not USD ignore them until converted.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SEED_DATE = datetime(2025, 8, 7, tzinfo=UTC)
SOURCE = "OpenAI public list price (standard tier) as of 2025-08-07; seeded by migration"

# model (exact name or pattern for dated versions), input, cached input, output: USD per million tokens
LLM = [
    ("gpt-5*", "1.25", "0.125", "10.00"),
    ("gpt-5-mini*", "0.25", "0.025", "2.00"),
    ("gpt-5-nano*", "0.05", "0.005", "0.40"),
    ("gpt-4.1*", "2.00", "0.50", "8.00"),
    ("gpt-4.1-mini*", "0.40", "0.10", "1.60"),
    ("gpt-4.1-nano*", "0.10", "0.025", "0.40"),
    ("gpt-4o*", "2.50", "1.25", "10.00"),
    ("gpt-4o-2024-05-13", "5.00", None, "15.00"),
    ("gpt-4o-mini*", "0.15", "0.075", "0.60"),
    ("gpt-4o-realtime-preview*", "5.00", "2.50", "20.00"),
    ("gpt-4o-mini-realtime-preview*", "0.60", "0.30", "2.40"),
    ("o1*", "15.00", "7.50", "60.00"),
    ("o1-mini*", "1.10", "0.55", "4.40"),
    ("o1-pro*", "150.00", None, "600.00"),
    ("o3*", "2.00", "0.50", "8.00"),
    ("o3-mini*", "1.10", "0.55", "4.40"),
    ("o3-pro*", "20.00", None, "80.00"),
    ("o4-mini*", "1.10", "0.275", "4.40"),
]
# model, USD per million input tokens
EMBEDDING = [
    ("text-embedding-3-small", "0.02"),
    ("text-embedding-3-large", "0.13"),
    ("text-embedding-ada-002", "0.10"),
]
# model, USD per unit, unit
SPEECH = [
    ("whisper-1", "0.006", "minute"),
    ("gpt-4o-transcribe", "0.006", "minute"),
    ("gpt-4o-mini-transcribe", "0.003", "minute"),
    ("tts-1", "0.000015", "character"),
    ("tts-1-hd", "0.00003", "character"),
]


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    common = {"provider": "openai", "currency": "USD", "effective_from": SEED_DATE, "source": SOURCE}
    rows = [
        ModelPrice(
            model=model,
            kind="llm",
            input_per_million=Decimal(price_in),
            cached_input_per_million=Decimal(cached) if cached is not None else None,
            output_per_million=Decimal(price_out),
            **common,
        )
        for model, price_in, cached, price_out in LLM
    ]
    rows += [ModelPrice(model=model, kind="embedding", input_per_million=Decimal(price), **common) for model, price in EMBEDDING]
    rows += [
        ModelPrice(model=model, kind="speech", unit_price=Decimal(price), unit=unit, **common)
        for model, price, unit in SPEECH
    ]
    ModelPrice.objects.bulk_create(rows, ignore_conflicts=True)


def unseed(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    ModelPrice.objects.filter(source=SOURCE, usage__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("observability", "0004_prices_budgets")]

    operations = [migrations.RunPython(seed, unseed)]
