from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """The room vector store (the `vectors` toolkit) needs pgvector on Postgres; a no-op on SQLite."""

    dependencies: list[tuple[str, str]] = []
    operations = [VectorExtension()]
