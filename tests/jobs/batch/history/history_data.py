"""The history import's test file and helpers, shared by the tests of its modules and of
``gridlake backfill import``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.batch.history.load import table_rows
from jobs.batch.history.plan import ImportPlan

DATA = Path(__file__).resolve().parents[3] / "data" / "history"
METERS = DATA / "meter_reading.csv"
#: The fixture's bad rows: 0-based data row index → reason.
BAD_ROWS = {2: "missing_field:device_id", 4: "bad_type:voltage_v", 7: "bad_type:ts",
            9: "bad_type:interval_s"}
HEADER = METERS.read_text().splitlines()[0]
D0, D1 = "2026-03-01", "2026-03-02"


def utc_ms(iso: str) -> int:
    """Epoch ms of a UTC ``yyyy-MM-ddTHH:mm:ss``."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def write_file(tmp_path: Path, name: str, text: str | bytes) -> Path:
    """``tmp_path / name`` holding ``text``."""
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def planned_rows(plan: ImportPlan) -> list[tuple[str, dict[str, Any]]]:
    """Every row the plan writes, as ``(table name, row)``."""
    return [(t.name, r) for f in plan.imported for t, r in table_rows(plan, f)]
