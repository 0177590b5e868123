"""What an imported row becomes (jobs.batch.history.rows): one table per row, deterministic
keys, typed ODS rows (no services)."""

from __future__ import annotations

from collections import Counter

from jobs.batch.history.plan import plan_import
from jobs.batch.history.rows import IMPORTED_LATENESS, ROW_BITS, file_position
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE
from tests.jobs.batch.history.history_data import D0, D1, METERS, planned_rows, utc_ms


def test_every_row_lands_in_exactly_one_table_with_deterministic_keys() -> None:
    plan = plan_import([METERS], "meter_reading", topic_prefix="gl.")
    rows = planned_rows(plan)
    assert Counter(t for t, _ in rows) == {ODS_TABLES["meter_reading"].name: 8,
                                           QUARANTINE.name: 4}
    keys = [(r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]) for _, r in rows]
    assert len(set(keys)) == 12
    partition, base = file_position(plan.files[0].sha256)
    assert keys == [("import:gl.meter.readings", partition, base + i) for i in range(12)]
    assert 0 <= partition < 2**31 and 0 <= base + 11 < 2**63
    # planned again (another process, another day): the same rows
    again = plan_import([METERS], "meter_reading", topic_prefix="gl.")
    assert planned_rows(again) == rows
    # every row carries every column of its table
    for t, r in rows:
        table = QUARANTINE if t == QUARANTINE.name else ODS_TABLES["meter_reading"]
        assert set(r) <= set(table.field_names)
        assert all(r.get(c) is not None for c in table.record_key)


def test_ods_rows_are_typed_with_event_time_ingest_and_partition() -> None:
    plan = plan_import([METERS], "meter_reading")
    ods = [r for t, r in planned_rows(plan) if t != QUARANTINE.name]
    by_offset = {r["kafka_offset"] & (2**ROW_BITS - 1): r for r in ods}
    assert sorted(by_offset) == [0, 1, 3, 5, 6, 8, 10, 11]
    first, offset_row = by_offset[0], by_offset[5]
    assert first["ts"] == utc_ms("2026-03-01T23:00:00") and first["dt"] == D0
    assert offset_row["ts"] == utc_ms("2026-03-02T00:15:00") and offset_row["dt"] == D1
    assert all(r["ingest_ts"] == r["ts"] and r["lateness"] == IMPORTED_LATENESS for r in ods)
    assert first["voltage_b_v"] is None and by_offset[6]["voltage_b_v"] == 231.0
    assert isinstance(first["interval_s"], int) and isinstance(first["voltage_v"], float)

