"""Writing a history import (jobs.batch.history.load): files changed since planning, the
running-stream check, and one import into an isolated lake (integration)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.lake import WebHdfs
from infra.settings import GridLakeSettings
from infra.spark import read_table, spark_scope
from jobs.batch.history import load
from jobs.batch.history.files import HistoryError
from jobs.batch.history.load import run_import
from jobs.batch.history.plan import plan_import
from jobs.batch.history.rows import ROW_BITS
from jobs.streaming import control
from lakehouse.contracts.schema import FieldType
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE
from tests.jobs.batch.history.history_data import (
    BAD_ROWS,
    D0,
    D1,
    METERS,
    planned_rows,
    write_file,
)


def test_a_file_changed_after_planning_is_not_written(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    shutil.copy(METERS, p)
    plan = plan_import([p], "meter_reading")
    p.write_text(METERS.read_text().replace("0.99", "0.97"))
    with pytest.raises(HistoryError, match="changed since it was checked"):
        planned_rows(plan)


def test_no_import_beside_this_lakes_running_stream(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(update={
        "lake": settings.lake.model_copy(update={"concurrency": "single_writer"})})
    monkeypatch.setattr(control, "status", lambda s, name: control.JobStatus(
        name, os.getpid(), True))
    with pytest.raises(HistoryError, match="stop it first"):
        load.check_stream_stopped(settings)
    # a job of the same home started for another lake (an isolated run) is not in the way
    monkeypatch.setattr(control, "_job_lake_root", lambda pid: "/gridlake/test/other")
    load.check_stream_stopped(settings)
    monkeypatch.setattr(control, "_job_lake_root", lambda pid: settings.hdfs.lake_root)
    with pytest.raises(HistoryError, match="stop it first"):
        load.check_stream_stopped(settings)
    optimistic = settings.model_copy(update={
        "lake": settings.lake.model_copy(update={"concurrency": "optimistic"})})
    load.check_stream_stopped(optimistic)


# ------------------------------------------------------------------------- integration
@pytest.fixture(scope="module")
def lake(stack: GridLakeSettings) -> Iterator[GridLakeSettings]:
    """A lake of this module's own (``/gridlake/test/<run>``), removed afterwards."""
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
    with spark_scope(lake, "test-history") as session:
        yield session


def _read(spark: Any, settings: GridLakeSettings) -> dict[str, list[dict[str, Any]]]:
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
    want_ods = [r for t, r in planned_rows(plan) if t != QUARANTINE.name]
    want_q = [r for t, r in planned_rows(plan) if t == QUARANTINE.name]
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
    p = write_file(tmp_path, "m.csv", METERS.read_text().replace("0.99", "0.98"))
    plan = plan_import([METERS, p], "meter_reading")
    p.write_text(METERS.read_text().replace("0.99", "0.97"))

    class NoSpark:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("nothing may be written")

    with pytest.raises(HistoryError, match="m.csv: changed since it was checked"):
        run_import(GridLakeSettings(), plan, NoSpark())  # type: ignore[call-arg]
