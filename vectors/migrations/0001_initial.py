"""The vector store's tables, and on Postgres its HNSW indexes.

One `vector` column without a fixed dimension holds the embeddings of any model (on SQLite the
same field is a BLOB of float32, see vectors/fields.py). pgvector can only index a column of known
dimension, so on Postgres there is one partial expression index per common embedding size
(`(embedding::vector(d)) vector_cosine_ops WHERE dims = d`, m 32, ef_construction 200); searches use the same expression
(vectors/search.py). On SQLite the RunPython step does nothing: searches there are exact.
"""

import django.db.models.deletion
from django.db import migrations, models

import vectors.fields
import vectors.models

INDEXED_DIMS = (384, 768, 1024, 1536)
# Denser graphs than pgvector's defaults (m 16, ef_construction 64): on bench/rag.py's 10k store,
# whose chunks cluster tightly (thousands of look-alike documents), an index built with the
# defaults reached recall@5 0.72 at ef_search 40 and 0.82 at 200, against exact search's 0.98;
# with these, 0.84 at 40 and 0.96 at 300, the server's default (docs/rag.md "Figures").
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200


def create_hnsw_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for dims in INDEXED_DIMS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS vectors_chunk_hnsw_{dims} ON vectors_chunk "
            f"USING hnsw ((embedding::vector({dims})) vector_cosine_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE dims = {dims}"
        )


def drop_hnsw_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for dims in INDEXED_DIMS:
        schema_editor.execute(f"DROP INDEX IF EXISTS vectors_chunk_hnsw_{dims}")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("rooms", "0001_initial"),
        ("toolkits", "0001_pgvector"),  # the extension
    ]

    operations = [
        migrations.CreateModel(
            name="Chunk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("collection", models.CharField(default="room", max_length=64)),
                (
                    "source_kind",
                    models.CharField(
                        choices=[
                            ("file", "Room storage file"),
                            ("thread", "Thread message"),
                            ("custom", "Upserted through the vectors toolkit"),
                        ],
                        max_length=8,
                    ),
                ),
                ("source_ref", models.CharField(help_text="Path, thread id, or a custom source name.", max_length=1024)),
                ("source_part", models.CharField(blank=True, default="", max_length=64)),
                (
                    "version",
                    models.CharField(blank=True, default="", help_text="Version of the source indexed.", max_length=128),
                ),
                ("ordinal", models.PositiveIntegerField(default=0, help_text="Position of the chunk in its source.")),
                ("text", models.TextField()),
                ("metadata", models.JSONField(blank=True, default=dict)),
                (
                    "model",
                    models.CharField(help_text="The embedding model; a search only compares its own.", max_length=200),
                ),
                ("dims", models.PositiveSmallIntegerField()),
                ("embedding", vectors.fields.EmbeddingField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "room",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="chunks", to="rooms.room"
                    ),
                ),
            ],
            options={
                "ordering": ["room", "source_kind", "source_ref", "source_part", "ordinal"],
                "indexes": [
                    models.Index(fields=["room", "collection", "model"], name="vectors_chunk_room_model"),
                    models.Index(fields=["room", "source_kind", "source_ref"], name="vectors_chunk_source"),
                ],
            },
        ),
        migrations.CreateModel(
            name="IndexJob",
            fields=[
                (
                    "id",
                    models.CharField(
                        default=vectors.models.new_job_id, max_length=24, primary_key=True, serialize=False
                    ),
                ),
                (
                    "action",
                    models.CharField(choices=[("index", "Index"), ("remove", "Remove")], default="index", max_length=8),
                ),
                (
                    "source_kind",
                    models.CharField(
                        choices=[
                            ("file", "Room storage file"),
                            ("thread", "Thread message"),
                            ("custom", "Upserted through the vectors toolkit"),
                        ],
                        max_length=8,
                    ),
                ),
                ("source_ref", models.CharField(max_length=1024)),
                ("source_part", models.CharField(blank=True, default="", max_length=64)),
                ("version", models.CharField(blank=True, default="", max_length=128)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("done", "Done"),
                            ("skipped", "Skipped"),
                            ("failed", "Failed"),
                        ],
                        db_index=True,
                        default="queued",
                        max_length=8,
                    ),
                ),
                ("chunks", models.PositiveIntegerField(default=0)),
                ("detail", models.TextField(blank=True, default="", help_text="Why it was skipped or failed.")),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "room",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="index_jobs", to="rooms.room"
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [models.Index(fields=["room", "status"], name="vectors_job_room_status")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=["room", "source_kind", "source_ref", "source_part", "version", "action"],
                        name="vectors_one_job_per_source_version",
                    )
                ],
            },
        ),
        migrations.RunPython(create_hnsw_indexes, drop_hnsw_indexes),
    ]
