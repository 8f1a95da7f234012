"""The ledger writer on SQLite, the embedded default (this suite's own database may be Postgres, so
it runs in a process of its own on a fresh SQLite file): rows go in 40-row INSERT statements and
the rest one by one, and read back as they were recorded."""

import json
import os
import subprocess
import sys

from tests.support.servers import ROOT

SCRIPT = r"""
import django, json
django.setup()
from datetime import UTC, datetime
from decimal import Decimal
from django.core.management import call_command
from django.db import connection
from observability.ledger import ROWS_PER_INSERT, Ledger
from observability.models import ToolCall

assert connection.vendor == "sqlite"
call_command("migrate", verbosity=0)
START = 1764547200.25

def row(n):
    return {
        "call_id": f"k_test{n:04d}", "project_id": 1, "room_id": 2, "room_name": "lobby",
        "toolkit": "kit", "tool": "echo", "caller_id": "Pcaller", "caller_identity": "alice",
        "caller_agent": "", "on_behalf_of_id": "", "on_behalf_of_identity": "", "host_id": "Phost",
        "host_identity": "bob", "started_at": START + n, "latency_ms": 1.5, "request_bytes": n,
        "response_bytes": 2 * n, "status": "ok", "error_code": None, "error_message": f"nul\x00{n}",
        "cost": Decimal("0.000000001") * n if n % 2 else None, "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}", "parent_span_id": "", "node": "node-1",
    }

ledger = Ledger()
sizes = [1, ROWS_PER_INSERT - 1, ROWS_PER_INSERT, ROWS_PER_INSERT + 1, 2 * ROWS_PER_INSERT + 13]
written = 0
for size in sizes:
    assert ledger._write([row(written + i) for i in range(size)])
    written += size
found = []
for call in ToolCall.objects.order_by("call_id"):
    n = int(call.call_id[len("k_test"):])
    expected = row(n)
    found.append(n)
    assert call.started_at == datetime.fromtimestamp(START + n, tz=UTC), (n, call.started_at)
    assert call.cost == (expected["cost"] or 0), (n, call.cost)
    assert (call.request_bytes, call.response_bytes, call.error_message) == (n, 2 * n, f"nul\x00{n}")
    assert (call.trace_id, call.span_id, call.toolkit, call.host_identity) == (
        f"{n:032x}", f"{n:016x}", "kit", "bob"
    )
print(json.dumps({"written": written, "found": found}))
"""


def test_the_sqlite_ledger_writes_every_row_of_batches_of_any_size(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={
            **{name: value for name, value in os.environ.items() if name != "MESHSITE_SQLITE_PATH"},
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.local",
            "MESHSITE_VAR_DIR": str(tmp_path),  # the SQLite file is made there
            "DATABASE_URL": "",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["written"] == 1 + 39 + 40 + 41 + 93
    assert outcome["found"] == list(range(outcome["written"]))
