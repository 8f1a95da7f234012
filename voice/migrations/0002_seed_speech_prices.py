"""Seeds the speech prices the VoiceBot's usage needs beyond observability's seed (which has
whisper-1, gpt-4o(-mini)-transcribe per minute and tts-1(-hd) per character): the dated versions of
the transcribe models, and gpt-4o-mini-tts per minute of audio out, at OpenAI's published estimate
(its real price is per token; the VoiceBot reports minutes estimated from the characters spoken
when `tts_unit="minute"`). Check them against the provider's pricing page."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SEED_DATE = datetime(2025, 8, 7, tzinfo=UTC)
SOURCE = "OpenAI public list price (standard tier) as of 2025-08-07; seeded by voice migration"
SPEECH = [
    ("gpt-4o-transcribe-*", "0.006", "minute"),
    ("gpt-4o-mini-transcribe-*", "0.003", "minute"),
    ("gpt-4o-mini-tts*", "0.015", "minute"),
]


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    rows = [
        ModelPrice(
            model=model,
            kind="speech",
            unit_price=Decimal(price),
            unit=unit,
            provider="openai",
            currency="USD",
            effective_from=SEED_DATE,
            source=SOURCE,
        )
        for model, price, unit in SPEECH
    ]
    ModelPrice.objects.bulk_create(rows, ignore_conflicts=True)


def unseed(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    ModelPrice.objects.filter(source=SOURCE, usage__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("voice", "0001_initial"), ("observability", "0005_seed_prices")]

    operations = [migrations.RunPython(seed, unseed)]
