"""History import: file checks, row reading, reasons, keys (no services) and one import
into an isolated lake (integration)."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from infra.settings import GridLakeSettings
from jobs.batch.history import (
    IMPORTED_LATENESS,
    KINDS,
    ROW_BITS,
    HistoryError,
    ImportPlan,
    ImportResult,
    detect_format,
    file_position,
    followup_request,
    plan_import,
    read_value,
    run_import,
    table_rows,
)
from lakehouse.contracts.messages import DEVICE_REGISTRY, METER_READING
from lakehouse.contracts.schema import Field, FieldType
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE

DATA = Path(__file__).resolve().parents[2] / "data" / "history"
METERS = DATA / "meter_reading.csv"
#: The fixture's bad rows: 0-based data row index → reason.
BAD_ROWS = {2: "missing_field:device_id", 4: "bad_type:voltage_v", 7: "bad_type:ts",
            9: "bad_type:interval_s"}
HEADER = METERS.read_text().splitlines()[0]
D0, D1 = "2026-03-01", "2026-03-02"


def _ms(iso: str) -> int:
    """Epoch ms of a UTC ``yyyy-MM-ddTHH:mm:ss``."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _rows(plan: ImportPlan) -> list[tuple[str, dict[str, Any]]]:
    return [(t.name, r) for f in plan.imported for t, r in table_rows(plan, f)]


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
    txt = _write(tmp_path, "meters.txt", METERS.read_text())
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
    p = _write(tmp_path, "short.csv", "\n".join(lines) + "\n")
    with pytest.raises(HistoryError) as err:
        plan_import([p], "meter_reading")
    msg = str(err.value)
    assert msg.startswith(f"{p}: missing required column(s) ts, seq for meter_reading")


def test_unknown_columns_are_an_error(tmp_path: Path) -> None:
    text = METERS.read_text().splitlines()
    lines = [text[0] + ",site,Notes"] + [t + ",x,y" for t in text[1:]]
    p = _write(tmp_path, "extra.csv", "\n".join(lines) + "\n")
    with pytest.raises(HistoryError, match=r"extra.csv: unknown column\(s\) site, Notes for "
                       "meter_reading"):
        plan_import([p], "meter_reading")


def test_duplicate_columns_are_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path, "dup.csv", HEADER + ",seq\n")
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
    bad = _write(tmp_path, "bad.csv", text)
    # a good file before it does not get planned (and so never written) either
    with pytest.raises(HistoryError, match=message) as err:
        plan_import([METERS, bad], "meter_reading")
    assert str(bad) in str(err.value)


def test_a_row_that_breaks_late_in_the_file_still_fails_before_writing(tmp_path: Path) -> None:
    good = METERS.read_text()
    bad = _write(tmp_path, "late.csv", good + 'MTR-9,"unterminated\n')
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
    rows = _rows(plan)
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


def test_every_row_lands_in_exactly_one_table_with_deterministic_keys() -> None:
    plan = plan_import([METERS], "meter_reading", topic_prefix="gl.")
    rows = _rows(plan)
    assert Counter(t for t, _ in rows) == {ODS_TABLES["meter_reading"].name: 8,
                                           QUARANTINE.name: 4}
    keys = [(r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]) for _, r in rows]
    assert len(set(keys)) == 12
    partition, base = file_position(plan.files[0].sha256)
    assert keys == [("import:gl.meter.readings", partition, base + i) for i in range(12)]
    assert 0 <= partition < 2**31 and 0 <= base + 11 < 2**63
    # planned again (another process, another day): the same rows
    again = plan_import([METERS], "meter_reading", topic_prefix="gl.")
    assert _rows(again) == rows
    # every row carries every column of its table
    for t, r in rows:
        table = QUARANTINE if t == QUARANTINE.name else ODS_TABLES["meter_reading"]
        assert set(r) <= set(table.field_names)
        assert all(r.get(c) is not None for c in table.record_key)


def test_ods_rows_are_typed_with_event_time_ingest_and_partition() -> None:
    plan = plan_import([METERS], "meter_reading")
    ods = [r for t, r in _rows(plan) if t != QUARANTINE.name]
    by_offset = {r["kafka_offset"] & (2**ROW_BITS - 1): r for r in ods}
    assert sorted(by_offset) == [0, 1, 3, 5, 6, 8, 10, 11]
    first, offset_row = by_offset[0], by_offset[5]
    assert first["ts"] == _ms("2026-03-01T23:00:00") and first["dt"] == D0
    assert offset_row["ts"] == _ms("2026-03-02T00:15:00") and offset_row["dt"] == D1
    assert all(r["ingest_ts"] == r["ts"] and r["lateness"] == IMPORTED_LATENESS for r in ods)
    assert first["voltage_b_v"] is None and by_offset[6]["voltage_b_v"] == 231.0
    assert isinstance(first["interval_s"], int) and isinstance(first["voltage_v"], float)


def test_quarantine_rows_are_dated_by_their_own_or_the_previous_event_time() -> None:
    plan = plan_import([METERS], "meter_reading")
    q = {r["kafka_offset"] & (2**ROW_BITS - 1): r for t, r in _rows(plan)
         if t == QUARANTINE.name}
    assert q[2]["ingest_ts"] == _ms("2026-03-01T23:30:00")  # its own (only device_id bad)
    assert q[4]["ingest_ts"] == _ms("2026-03-02T00:00:00") and q[4]["dt"] == D1
    assert q[7]["ingest_ts"] == _ms("2026-03-01T23:00:00")  # no readable ts: row 6's
    assert plan.quarantine_days == [D0, D1]


def test_rows_before_any_readable_event_time_take_the_files_first(tmp_path: Path) -> None:
    lines = METERS.read_text().splitlines()
    body = [lines[0], lines[1].replace("1772406000000", "yesterday"), *lines[2:]]
    p = _write(tmp_path, "lead.csv", "\n".join(body) + "\n")
    plan = plan_import([p], "meter_reading")
    q = {r["kafka_offset"] & (2**ROW_BITS - 1): r for t, r in _rows(plan)
         if t == QUARANTINE.name}
    assert q[0]["reason"] == "bad_type:ts"
    assert q[0]["ingest_ts"] == _ms("2026-03-01T23:15:00") == plan.files[0].first_event_ms


def test_same_bytes_are_imported_once_and_other_bytes_get_other_keys(tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    shutil.copy(METERS, copy)
    changed = _write(tmp_path, "changed.csv", METERS.read_text().replace("0.99", "0.98"))
    plan = plan_import([METERS, copy, changed], "meter_reading")
    assert [f.same_as for f in plan.files] == [None, METERS, None]
    assert plan.rows == 24 and plan.valid == 16
    parts = {f.kafka_partition for f in plan.imported}
    assert len(parts) == 2
    rows = _rows(plan)
    assert len({(r["kafka_partition"], r["kafka_offset"]) for _, r in rows}) == 24


def test_a_file_changed_after_planning_is_not_written(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    shutil.copy(METERS, p)
    plan = plan_import([p], "meter_reading")
    p.write_text(METERS.read_text().replace("0.99", "0.97"))
    with pytest.raises(HistoryError, match="changed since it was checked"):
        _rows(plan)


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
    ods = [r for t, r in _rows(plan) if t != QUARANTINE.name]
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
    p = _write(tmp_path, "m.parquet", METERS.read_text())
    with pytest.raises(HistoryError, match="m.parquet: not a readable Parquet file"):
        plan_import([p], "meter_reading")


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


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli_env(tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRIDLAKE_KAFKA__TOPIC_PREFIX", "cli.")


def test_cli_dry_run_reports_per_file(cli_env: None) -> None:
    from ops.cli.backfill import app

    res = CliRunner().invoke(app, ["import", str(METERS), "--kind", "meter_reading",
                                   "--dry-run"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "12 rows: 8 to ods_meter_reading, 4 to ods_quarantine" in out
    assert "import:cli.meter.readings" in out and "dry run, nothing written" in out
    assert "bad_type:voltage_v" in out and "2026-03-01 … 2026-03-02 (2)" in out
    assert f"{METERS} line 6: bad_type:voltage_v" in out


def test_cli_errors_exit_2_with_the_reason(cli_env: None, tmp_path: Path) -> None:
    from ops.cli.backfill import app

    res = CliRunner().invoke(app, ["import", str(METERS), "--kind", "toaster", "--dry-run"])
    assert res.exit_code == 2
    assert "unknown kind 'toaster'" in res.output
    res = CliRunner().invoke(app, ["import", str(tmp_path / "x.csv"), "--kind",
                                   "meter_reading"])
    assert res.exit_code == 2 and "no such file" in res.output


def test_cli_import_writes_then_offers_or_runs_the_backfill(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops.cli import backfill as cli

    written: list[ImportPlan] = []

    def fake_import(settings: GridLakeSettings, plan: ImportPlan, **kw: Any) -> ImportResult:
        written.append(plan)
        res = ImportResult(plan.kind, 1, plan.rows, plan.valid, plan.quarantined, 2)
        kw["on_progress"](res)
        return res

    backfills: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "run_import", fake_import)
    monkeypatch.setattr(cli, "check_stream_stopped", lambda s: None)
    monkeypatch.setattr(cli, "run", lambda **kw: backfills.append(kw))
    args = ["import", str(METERS), "--kind", "meter_reading"]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "8 rows to ods_meter_reading, 4 to ods_quarantine" in out
    assert ("gridlake backfill run --start 2026-03-01 --end 2026-03-04 --layer dwd "
            "--device-type meter") in out
    assert len(written) == 1 and not backfills
    res = CliRunner().invoke(cli.app, [*args, "--then-backfill"])
    assert res.exit_code == 0, res.output
    assert backfills == [{"start": "2026-03-01", "end": "2026-03-04", "layer": "dwd",
                          "device_type": ["meter"], "region": None, "feeder": None,
                          "dry_run": False, "detach": False}]


def test_no_import_beside_this_lakes_running_stream(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from jobs.batch import history
    from jobs.streaming import control

    settings = settings.model_copy(update={
        "lake": settings.lake.model_copy(update={"concurrency": "single_writer"})})
    monkeypatch.setattr(control, "status", lambda s, name: control.JobStatus(
        name, os.getpid(), True))
    with pytest.raises(HistoryError, match="stop it first"):
        history.check_stream_stopped(settings)
    # a job of the same home started for another lake (an isolated run) is not in the way
    monkeypatch.setattr(history, "_job_lake_root", lambda pid: "/gridlake/test/other")
    history.check_stream_stopped(settings)
    monkeypatch.setattr(history, "_job_lake_root", lambda pid: settings.hdfs.lake_root)
    with pytest.raises(HistoryError, match="stop it first"):
        history.check_stream_stopped(settings)
    optimistic = settings.model_copy(update={
        "lake": settings.lake.model_copy(update={"concurrency": "optimistic"})})
    history.check_stream_stopped(optimistic)


# ------------------------------------------------------------------------- integration
@pytest.fixture(scope="module")
def lake(stack: GridLakeSettings) -> Iterator[GridLakeSettings]:
    """A lake of this module's own (``/gridlake/test/<run>``), removed afterwards."""
    from infra.lake import WebHdfs

    run = "hist" + uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "kafka": stack.kafka.model_copy(update={"topic_prefix": f"t{run}."}),
        "hdfs": stack.hdfs.model_copy(update={"lake_root": f"/gridlake/test/{run}"}),
    })
    yield settings
    with WebHdfs.from_settings(settings) as fs:
        fs.delete(f"/gridlake/test/{run}", recursive=True)


@pytest.fixture(scope="module")
def spark(lake: GridLakeSettings) -> Iterator[Any]:
    from infra.spark import spark_session

    session = spark_session(lake, "test-history")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _read(spark: Any, settings: GridLakeSettings) -> dict[str, list[dict[str, Any]]]:
    from infra.spark import read_table

    out = {}
    for t in (ODS_TABLES["meter_reading"], QUARANTINE):
        df = read_table(spark, settings, t).selectExpr(*[
            f"unix_millis(`{f.name}`) AS `{f.name}`" if f.type is FieldType.TIMESTAMP
            else f"`{f.name}`" for f in t.fields])
        out[t.name] = sorted((r.asDict() for r in df.collect()),
                             key=lambda r: (r["kafka_partition"], r["kafka_offset"]))
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_import_into_the_lake_is_exact_and_idempotent(
    lake: GridLakeSettings, spark: Any
) -> None:
    plan = plan_import([METERS], "meter_reading", topic_prefix=lake.kafka.topic_prefix)
    progress: list[tuple[int, int]] = []
    t0 = time.monotonic()
    result = run_import(lake, plan, spark, lambda r: progress.append((r.files, r.rows)))
    assert (result.files, result.ods_rows, result.quarantined, result.commits) == (1, 8, 4, 2)
    assert progress[-1] == (1, 12)
    got = _read(spark, lake)
    ods, quarantine = got["ods_meter_reading"], got["ods_quarantine"]
    want_ods = [r for t, r in _rows(plan) if t != QUARANTINE.name]
    want_q = [r for t, r in _rows(plan) if t == QUARANTINE.name]
    assert len(ods) == 8 and len(quarantine) == 4
    # exactly the planned rows, column by column (timestamps as epoch ms)
    for have, expect, table in ((ods, want_ods, ODS_TABLES["meter_reading"]),
                                (quarantine, want_q, QUARANTINE)):
        assert [{c: r[c] for c in table.field_names} for r in have] == [
            {c: r.get(c) for c in table.field_names} for r in expect]
    assert {r["kafka_offset"] & (2**ROW_BITS - 1): r["reason"] for r in quarantine} == BAD_ROWS
    assert {r["dt"] for r in ods} == {D0, D1}
    # a second import of the same file rewrites the same keys: nothing changes
    again = run_import(lake, plan_import([METERS], "meter_reading",
                                         topic_prefix=lake.kafka.topic_prefix), spark)
    assert (again.ods_rows, again.quarantined) == (8, 4)
    assert _read(spark, lake) == got
    assert time.monotonic() - t0 < 600


def test_run_import_refuses_a_changed_file_before_any_write(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.csv", METERS.read_text().replace("0.99", "0.98"))
    plan = plan_import([METERS, p], "meter_reading")
    p.write_text(METERS.read_text().replace("0.99", "0.97"))

    class NoSpark:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("nothing may be written")

    with pytest.raises(HistoryError, match="m.csv: changed since it was checked"):
        run_import(GridLakeSettings(), plan, NoSpark())  # type: ignore[call-arg]
