"""Usage written in batches (`record_usages`, the metering proxy's writer) reads back exactly as a
record saved one at a time by the ORM (`record_usage`): cost, price, metadata, time, empty room.
On this suite's database, and on SQLite (the embedded default) in a process of its own."""

import os
import subprocess
import sys

import pytest

from tests.support.servers import ROOT

COMPARE = r"""
from datetime import timedelta
from decimal import Decimal
from django.forms.models import model_to_dict
from django.utils import timezone
from observability.budgets import Who
from observability.models import ModelPrice, UsageRecord
from observability.pricing import Amounts, forget_prices
from observability.usage import SpentBy, record_usage, record_usages, usage_values
from rooms.models import Project, Room

def compare():
    project = Project.objects.create(slug="rows", name="Rows")
    room = Room.objects.create(project=project, name="lab")
    ModelPrice.objects.create(
        model="acme-*", input_per_million=Decimal("2.50"), cached_input_per_million=Decimal("1.25"),
        output_per_million=Decimal("10.00"), effective_from=timezone.now() - timedelta(days=1),
    )
    forget_prices()
    now = timezone.now().replace(microsecond=123456)
    cases = [
        (Who(project.pk, room.pk, "lab", "Pabc", "alice", "researcher"),
         dict(kind="llm", model="acme-chat", amounts=Amounts(1200, 345, 200), thread_id="t1", turn_id="u1",
              trace_id="a" * 32, span_id="b" * 16, metadata={"source": "proxy", "nested": {"n": [1, "\u00e9"]}})),
        (Who(project.pk, None, "", "", "api-key:x", ""),
         dict(kind="llm", model="unknown-model", amounts=Amounts(7, 0, 0), metadata=None)),
        (Who(project.pk, room.pk, "lab", "", "bob", ""),
         dict(kind="embedding", model="acme-chat", amounts=Amounts(0, 0, 0, 2.5),
              by=SpentBy("k_1", "kit.tool", "c" * 32, "d" * 16))),
    ]
    batch = [usage_values(who, now=now, **fields) for who, fields in cases]
    record_usages(batch)
    batched = list(UsageRecord.objects.order_by("pk"))
    for who, fields in cases:
        record_usage(who, **fields)  # priced now: the same price applies
    single = list(UsageRecord.objects.order_by("pk"))[len(cases):]
    assert len(batched) == len(single) == len(cases)
    for a, b in zip(batched, single):
        a.refresh_from_db(); b.refresh_from_db()
        assert a.created_at == now
        one, other = model_to_dict(a), model_to_dict(b)
        for row in (one, other):
            row.pop("id"); row.pop("created_at")
        assert one == other, (one, other)
    # (1000 * 2.50 + 200 * 1.25 + 345 * 10.00) / 1e6
    assert batched[0].cost == Decimal("0.0062") and batched[0].priced and batched[0].price_id is not None
    assert (batched[1].priced, batched[1].cost, batched[1].room_id) == (False, Decimal(0), None)
    assert batched[0].metadata == {"source": "proxy", "nested": {"n": [1, "\u00e9"]}}
    return len(batched)
"""


@pytest.mark.django_db
def test_batched_usage_reads_back_as_one_saved_by_the_orm():
    scope: dict = {}
    exec(COMPARE, scope)  # the same check the SQLite process runs
    assert scope["compare"]() == 3


def test_batched_usage_reads_back_as_one_saved_by_the_orm_on_sqlite(tmp_path):
    script = "import django\ndjango.setup()\nfrom django.core.management import call_command\n"
    script += "call_command('migrate', verbosity=0)\n" + COMPARE + "\nprint(compare())\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **{name: value for name, value in os.environ.items() if name != "MESHSITE_SQLITE_PATH"},
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.local",
            "MESHSITE_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "3"
