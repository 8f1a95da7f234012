"""Seeds a price for outbound email, so every reply has a cost in the ledger from the start.

One row for every ESP (`*`, the ledger's `model` for email is the backend: smtp, mailgun,
postmark…): USD 0.001 per message, about the list price of the common ESPs' pay-as-you-go
tiers (USD 0.80–1.50 per thousand) at the seed date. An operator sets their own rate by adding a
row for their ESP (an exact name wins over `*`) or a later `effective_from`.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SEED_DATE = datetime(2025, 8, 7, tzinfo=UTC)
SOURCE = "Per-message estimate of common ESP list prices (USD 0.80-1.50 per 1000) as of 2025-08-07; seeded by migration"


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    ModelPrice.objects.bulk_create(
        [
            ModelPrice(
                model="*",
                kind="email",
                unit_price=Decimal("0.001"),
                unit="message",
                currency="USD",
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
    dependencies = [("mail", "0001_initial"), ("observability", "0005_seed_prices")]

    operations = [migrations.RunPython(seed, unseed)]
