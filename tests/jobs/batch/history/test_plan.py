"""Planning a history import (jobs.batch.history.plan): reasons, partitions, files imported
once, the follow-up backfill (no services)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

from jobs.batch.history.plan import ImportPlan, followup_request, plan_import
from jobs.batch.history.rows import ROW_BITS
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.contracts.tables import QUARANTINE
from lakehouse.time import MAX_MS, MIN_MS
from tests.jobs.batch.history.history_data import (
    BAD_ROWS,
    D0,
    D1,
    HEADER,
    METERS,
    planned_rows,
    utc_ms,
    write_file,
)


# --------------------------------------------------------------------- rows and keys
def test_bad_rows_get_the_contract_reasons() -> None:
    plan = plan_import([METERS], "meter_reading", topic_prefix="gl.")
    (f,) = plan.files
    assert (f.rows, f.valid, f.quarantined) == (12, 8, 4)
    assert f.reasons == Counter(BAD_ROWS.values())
    # the header is line 1: data row i is on line i + 2
    assert f.examples == [(i + 2, r) for i, r in sorted(BAD_ROWS.items())]
    assert plan.ods_days == [D0, D1]
    assert plan.topic == "import:gl.meter.readings"
    rows = planned_rows(plan)
    quarantined = [r for t, r in rows if t == QUARANTINE.name]
    assert {r["kafka_offset"] & (2**ROW_BITS - 1): r["reason"] for r in quarantined} == BAD_ROWS
    # the payload is the raw row, cells as they are in the file (empty cells null)
    lines = METERS.read_text().splitlines()
    for r in quarantined:
        index = r["kafka_offset"] & (2**ROW_BITS - 1)
        cells = lines[1 + index].split(",")
        assert json.loads(r["payload"]) == {
            c: (v or None) for c, v in zip(HEADER.split(","), cells, strict=True)}
        # the contract gives the same reason when it reads the row again
        assert r["reason"] == BAD_ROWS[index]


def test_quarantine_rows_are_dated_by_their_own_or_the_previous_event_time() -> None:
    plan = plan_import([METERS], "meter_reading")
    q = {r["kafka_offset"] & (2**ROW_BITS - 1): r for t, r in planned_rows(plan)
         if t == QUARANTINE.name}
    assert q[2]["ingest_ts"] == utc_ms("2026-03-01T23:30:00")  # its own (only device_id bad)
    assert q[4]["ingest_ts"] == utc_ms("2026-03-02T00:00:00") and q[4]["dt"] == D1
    assert q[7]["ingest_ts"] == utc_ms("2026-03-01T23:00:00")  # no readable ts: row 6's
    assert plan.quarantine_days == [D0, D1]


def test_rows_before_any_readable_event_time_take_the_files_first(tmp_path: Path) -> None:
    lines = METERS.read_text().splitlines()
    body = [lines[0], lines[1].replace("1772406000000", "yesterday"), *lines[2:]]
    p = write_file(tmp_path, "lead.csv", "\n".join(body) + "\n")
    plan = plan_import([p], "meter_reading")
    q = {r["kafka_offset"] & (2**ROW_BITS - 1): r for t, r in planned_rows(plan)
         if t == QUARANTINE.name}
    assert q[0]["reason"] == "bad_type:ts"
    assert q[0]["ingest_ts"] == utc_ms("2026-03-01T23:15:00") == plan.files[0].first_event_ms


def test_rows_outside_years_1_to_9999_are_quarantined_with_the_reason(tmp_path: Path) -> None:
    lines = METERS.read_text().splitlines()
    at = HEADER.split(",").index("ts")

    def with_ts(line: str, value: str) -> str:
        cells = line.split(",")
        cells[at] = value
        return ",".join(cells)

    last = write_file(tmp_path, "last.csv", "\n".join(
        [lines[0], with_ts(lines[1], str(MAX_MS)), with_ts(lines[2], str(MAX_MS + 1)),
         *lines[3:]]) + "\n")
    plan = plan_import([last], "meter_reading")
    (f,) = plan.files
    assert (f.valid, f.quarantined, f.reasons["bad_type:ts"]) == (7, 5, 2)
    assert "9999-12-31" in plan.ods_days  # the last representable millisecond is valid
    q = {r["kafka_offset"] & (2**ROW_BITS - 1): r for t, r in planned_rows(plan)
         if t == QUARANTINE.name}
    assert q[1]["reason"] == "bad_type:ts"
    assert json.loads(q[1]["payload"])["ts"] == str(MAX_MS + 1)
    assert (q[1]["ingest_ts"], q[1]["dt"]) == (MAX_MS, "9999-12-31")  # row 0's time
    first = write_file(tmp_path, "first.csv", "\n".join(
        [lines[0], with_ts(lines[1], str(MIN_MS - 1)), *lines[2:]]) + "\n")
    plan = plan_import([first], "meter_reading")
    q = {r["kafka_offset"] & (2**ROW_BITS - 1): r for t, r in planned_rows(plan)
         if t == QUARANTINE.name}
    assert q[0]["reason"] == "bad_type:ts"
    assert q[0]["ingest_ts"] == plan.files[0].first_event_ms == utc_ms("2026-03-01T23:15:00")


def test_same_bytes_are_imported_once_and_other_bytes_get_other_keys(tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    shutil.copy(METERS, copy)
    changed = write_file(tmp_path, "changed.csv", METERS.read_text().replace("0.99", "0.98"))
    plan = plan_import([METERS, copy, changed], "meter_reading")
    assert [f.same_as for f in plan.files] == [None, METERS, None]
    assert plan.rows == 24 and plan.valid == 16
    parts = {f.kafka_partition for f in plan.imported}
    assert len(parts) == 2
    rows = planned_rows(plan)
    assert len({(r["kafka_partition"], r["kafka_offset"]) for _, r in rows}) == 24


# ------------------------------------------------------------------------- follow-up
def test_followup_backfill_covers_the_imported_days_and_the_next() -> None:
    plan = plan_import([METERS], "meter_reading")
    req = followup_request(plan, today=date(2026, 11, 21))
    assert req is not None
    assert (req.start, req.end, req.from_layer) == (date(2026, 3, 1), date(2026, 3, 4), "dwd")
    assert req.scope.device_types == ("meter",)
    capped = followup_request(plan, today=date(2026, 3, 2))
    assert capped is not None and capped.end == date(2026, 3, 3)
    assert followup_request(plan, today=date(2026, 2, 1)) is None
    registry = ImportPlan(DEVICE_REGISTRY.name, "import:x", plan.files)
    reg = followup_request(registry, today=date(2026, 11, 21))
    assert reg is not None and reg.from_layer == "dim" and reg.scope.device_types == ()

