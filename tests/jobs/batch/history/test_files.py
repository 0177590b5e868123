"""History files (jobs.batch.history.files): file checks, format, columns, and how each
cell is read (no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.batch.history.files import KINDS, HistoryError, detect_format, read_value
from jobs.batch.history.plan import plan_import
from lakehouse.contracts.messages import METER_READING
from lakehouse.contracts.schema import Field, FieldType
from lakehouse.contracts.tables import QUARANTINE
from lakehouse.time import MAX_MS, MIN_MS
from tests.jobs.batch.history.history_data import HEADER, METERS, planned_rows, write_file


# --------------------------------------------------------------------------- the checks
def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(HistoryError, match="unknown kind 'meter_readings'; choose from "
                       "meter_reading, feeder_scada") as err:
        plan_import([METERS], "meter_readings")
    assert all(k in str(err.value) for k in KINDS)


def test_format_from_the_extension_or_the_option(tmp_path: Path) -> None:
    assert detect_format(Path("a.CSV")) == "csv"
    assert detect_format(Path("a.parquet")) == "parquet"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(HistoryError, match=r"cannot tell the format .* '\.txt'.*--format"):
        detect_format(Path("a.txt"))
    with pytest.raises(HistoryError, match="unknown format 'json'"):
        detect_format(Path("a.csv"), "json")
    # --format overrides the extension
    txt = write_file(tmp_path, "meters.txt", METERS.read_text())
    assert plan_import([txt], "meter_reading", "csv").rows == 12


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="nope.csv: no such file"):
        plan_import([tmp_path / "nope.csv"], "meter_reading")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(HistoryError, match="dir.csv: not a file"):
        plan_import([tmp_path / "dir.csv"], "meter_reading")
    with pytest.raises(HistoryError, match="no files"):
        plan_import([], "meter_reading")


def test_missing_required_columns_are_named_with_the_file(tmp_path: Path) -> None:
    cols = HEADER.split(",")
    drop = {"ts", "seq"}
    lines = [",".join(c for c in cols if c not in drop)]
    p = write_file(tmp_path, "short.csv", "\n".join(lines) + "\n")
    with pytest.raises(HistoryError) as err:
        plan_import([p], "meter_reading")
    msg = str(err.value)
    assert msg.startswith(f"{p}: missing required column(s) ts, seq for meter_reading")


def test_unknown_columns_are_an_error(tmp_path: Path) -> None:
    text = METERS.read_text().splitlines()
    lines = [text[0] + ",site,Notes"] + [t + ",x,y" for t in text[1:]]
    p = write_file(tmp_path, "extra.csv", "\n".join(lines) + "\n")
    with pytest.raises(HistoryError, match=r"extra.csv: unknown column\(s\) site, Notes for "
                       "meter_reading"):
        plan_import([p], "meter_reading")


def test_duplicate_columns_are_an_error(tmp_path: Path) -> None:
    p = write_file(tmp_path, "dup.csv", HEADER + ",seq\n")
    with pytest.raises(HistoryError, match=r"duplicate column\(s\) seq"):
        plan_import([p], "meter_reading")


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("\n\n", "empty file"),
    (HEADER + "\n", "no data rows"),
    (HEADER + '\nMTR-1,"1772406000000,1,0,230,4,1,1,0,1,900,\n', "malformed CSV"),
    (HEADER + '\nMTR-1,"17"x,1,0,230,4,1,1,0,1,900,\n', "malformed CSV"),
    (HEADER + "\nMTR-1,1772406000000,1\n", "line 2: 3 cells, the header has 12"),
    (HEADER + "\nMTR-1,1772406000000,1,0,230,4,1,1,0,1,900,,9\n", "13 cells"),
    (HEADER.encode() + b"\nMTR-\xff\xfe,1,1,0,230,4,1,1,0,1,900,\n", "not UTF-8"),
    (HEADER + "\nMTR-1\x00,1772406000000,1,0,230,4,1,1,0,1,900,\n", "NUL byte"),
])
def test_malformed_or_empty_csv_fails_the_whole_import(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    bad = write_file(tmp_path, "bad.csv", text)
    # a good file before it does not get planned (and so never written) either
    with pytest.raises(HistoryError, match=message) as err:
        plan_import([METERS, bad], "meter_reading")
    assert str(bad) in str(err.value)


def test_a_row_that_breaks_late_in_the_file_still_fails_before_writing(tmp_path: Path) -> None:
    good = METERS.read_text()
    bad = write_file(tmp_path, "late.csv", good + 'MTR-9,"unterminated\n')
    with pytest.raises(HistoryError, match="malformed CSV"):
        plan_import([bad], "meter_reading")


# ------------------------------------------------------------------------- the values
TS = Field("ts", FieldType.TIMESTAMP)
INT = Field("n", FieldType.INT)
BIG = Field("n", FieldType.BIGINT)
DBL = Field("x", FieldType.DOUBLE)
BOOL = Field("b", FieldType.BOOLEAN)
STR = Field("s", FieldType.STRING)


@pytest.mark.parametrize(("f", "cell", "want"), [
    (TS, "1772406000000", 1772406000000),
    (TS, " 1772406000000 ", 1772406000000),
    (TS, "2026-03-01T23:00:00Z", 1772406000000),
    (TS, "2026-03-02T00:00:00+01:00", 1772406000000),
    (TS, "2026-03-01T23:00:00.123999Z", 1772406000123),  # truncated to the millisecond
    (TS, "2026-03-01 23:00:00", "2026-03-01 23:00:00"),  # no offset: not guessed
    (TS, "2026-03-01", "2026-03-01"),
    (TS, "1772406000000.0", "1772406000000.0"),
    (TS, "9" * 25, "9" * 25),  # beyond year 9999
    (INT, "900", 900),
    (INT, "-7", -7),
    (INT, "900.0", "900.0"),  # JSON 900.0 is no int for the stream either
    (INT, str(2**31), str(2**31)),  # out of the column's range
    (BIG, str(2**40), 2**40),
    (DBL, "230", 230.0),
    (DBL, "2.3e2", 230.0),
    (DBL, "abc", "abc"),
    (DBL, "1_000", "1_000"),
    (BOOL, "TRUE", True),
    (BOOL, "false", False),
    (BOOL, "1", "1"),
    (STR, " MTR-1 ", " MTR-1 "),
    (STR, None, None),
])
def test_cells_are_read_by_the_field_type(f: Field, cell: str | None, want: Any) -> None:
    got = read_value(f, cell)
    assert got == want and type(got) is type(want)


def test_typed_parquet_values() -> None:
    assert read_value(TS, datetime(2026, 3, 1, 23, tzinfo=UTC)) == 1772406000000
    assert isinstance(read_value(TS, datetime(2026, 3, 1, 23)), str)  # naive
    assert read_value(DBL, 230) == 230.0 and isinstance(read_value(DBL, 230), float)
    assert read_value(INT, 2**31) == str(2**31)
    assert read_value(INT, True) is True  # the contract says bad_type
    assert METER_READING.field("seq").check(read_value(INT, True)) == "bad_type:seq"


def test_timestamps_outside_years_1_to_9999_are_passed_on_as_text() -> None:
    assert read_value(TS, str(MIN_MS)) == MIN_MS and read_value(TS, str(MAX_MS)) == MAX_MS
    assert read_value(TS, "9999-12-31T23:59:59.999Z") == MAX_MS
    # beyond the range in UTC, though the date-time itself is in years 1-9999
    for cell in (str(MIN_MS - 1), str(MAX_MS + 1), "0001-01-01T00:00:00+01:00",
                 "9999-12-31T23:59:59.999-01:00"):
        assert read_value(TS, cell) == cell, cell
    late = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-1)))
    assert read_value(TS, late) == str(late)
    assert read_value(TS, MAX_MS + 1) == str(MAX_MS + 1)
    # which the contract reports, so that the row is quarantined with that reason
    assert METER_READING.field("ts").check(read_value(TS, str(MAX_MS + 1))) == "bad_type:ts"


# ------------------------------------------------------------------------------ parquet
def _meter_table(ts: pa.Array, seq: pa.Array | None = None) -> pa.Table:
    n = len(ts)
    cols: dict[str, Any] = {
        "device_id": pa.array(["MTR-1"] * (n - 1) + [None]),
        "ts": ts,
        "energy_import_kwh": pa.array([1.0] * n), "energy_export_kwh": pa.array([0.0] * n),
        "voltage_v": pa.array([230.0] * n), "current_a": pa.array([4.0] * n),
        "active_power_kw": pa.array([1] * n, pa.int64()),  # integers for a double column
        "seq": seq if seq is not None else pa.array(range(n), pa.int64()),
        "reactive_power_kvar": pa.array([0.1] * n), "power_factor": pa.array([0.99] * n),
        "interval_s": pa.array([900] * n, pa.int32()),
    }
    return pa.table(cols)


def test_parquet_files(tmp_path: Path) -> None:
    stamps = pa.array([1772406000000, 1772406900000, 1772407800000],
                      pa.timestamp("ms", "UTC"))
    p = tmp_path / "m.parquet"
    pq.write_table(_meter_table(stamps), p)
    plan = plan_import([p], "meter_reading")
    assert (plan.rows, plan.valid, plan.quarantined) == (3, 2, 1)
    assert plan.reasons == {"missing_field:device_id": 1}
    ods = [r for t, r in planned_rows(plan) if t != QUARANTINE.name]
    assert [r["ts"] for r in ods] == [1772406000000, 1772406900000]
    assert ods[0]["active_power_kw"] == 1.0 and isinstance(ods[0]["active_power_kw"], float)
    # epoch-ms integers are timestamps too
    pq.write_table(_meter_table(pa.array([1772406000000, 1, 2], pa.int64())), p)
    assert plan_import([p], "meter_reading").valid == 2


@pytest.mark.parametrize(("table", "message"), [
    (lambda: _meter_table(pa.array([1, 2], pa.timestamp("ms"))), "without a time zone"),
    (lambda: _meter_table(pa.array([1, 2], pa.int64()), pa.array([1.0, 2.0])),
     "column seq is double, which cannot hold a bigint"),
    (lambda: _meter_table(pa.array([0], pa.int64())).slice(0, 0), "no data rows"),
])
def test_parquet_schema_problems_fail_before_writing(
    tmp_path: Path, table: Any, message: str
) -> None:
    p = tmp_path / "m.parquet"
    pq.write_table(table(), p)
    with pytest.raises(HistoryError, match=message):
        plan_import([p], "meter_reading")


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    p = write_file(tmp_path, "m.parquet", METERS.read_text())
    with pytest.raises(HistoryError, match="m.parquet: not a readable Parquet file"):
        plan_import([p], "meter_reading")

