"""A zero price for the local embedding model, so its usage shows as priced (and free) in the
ledger. OpenAI's embedding models are priced by observability's seed (0005_seed_prices)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import migrations

SEED_DATE = datetime(2025, 8, 7, tzinfo=UTC)
SOURCE = "local model run by this server (sentence-transformers on the CPU): no charge; seeded by migration"


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    ModelPrice.objects.bulk_create(
        [
            ModelPrice(
                model="all-MiniLM-L6-v2",
                provider="local",
                kind="embedding",
                input_per_million=Decimal(0),
                currency=settings.MESHSITE_CURRENCY,  # free in whatever currency this server counts
                effective_from=SEED_DATE,
                source=SOURCE,
            )
        ],
        ignore_conflicts=True,
    )


def unseed(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    ModelPrice.objects.filter(source=SOURCE, usage__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("vectors", "0001_initial"), ("observability", "0005_seed_prices")]

    operations = [migrations.RunPython(seed, unseed)]
