"""Backfills with Spark against the lake the streaming job wrote (real Spark, Hudi on HDFS).

The seeded scenario is streamed once per session (``lake_run``); these tests snapshot every
DIM, DWD, DWS and ADS table, recompute them from ODS with Spark and compare key by key and
value by value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pandas as pd
import pytest

from infra.settings import GridLakeSettings
from jobs.batch.backfill import BackfillError, BackfillRequest, Scope, run_backfill
from jobs.transforms import pipeline, summary
from jobs.transforms.dialect import SPARK
from lakehouse.contracts.schema import TableContract
from tests.jobs.conftest import stream_scenario
from tests.jobs.lake_run import compare, read_tables
from tests.jobs.streaming import lakehouse_data

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTPUTS: list[TableContract] = [o.table for o in pipeline.outputs(SPARK)]
# The scenario's event days (2026-03-01 22:00 … 2026-03-03 03:45 UTC).
FIRST_DAY, END_DAY = date(2026, 3, 1), date(2026, 3, 4)


@pytest.fixture(scope="module")
def lake_run(
    stack: GridLakeSettings, scenario: lakehouse_data.Scenario
) -> Iterator[tuple[GridLakeSettings, str]]:
    """A streamed lake of this module's own: the backfills here rewrite its tables."""
    yield from stream_scenario(stack, scenario)


@pytest.fixture(scope="module")
def spark(lake_run: tuple[GridLakeSettings, str]) -> Iterator[Any]:
    """One Spark session for the module."""
    from jobs.batch.spark import spark_session

    session = spark_session(lake_run[0], "test-backfill")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def streamed(lake_run: tuple[GridLakeSettings, str], spark: Any) -> dict[str, pd.DataFrame]:
    """Every table as the streaming job left it."""
    return read_tables(lake_run[0], OUTPUTS, spark)


@pytest.fixture(scope="module")
def full_backfill(
    lake_run: tuple[GridLakeSettings, str], spark: Any, streamed: dict[str, pd.DataFrame]
) -> tuple[int, dict[str, pd.DataFrame]]:
    """A backfill of every layer over the scenario's days; (start ms, tables after it)."""
    t0 = int(time.time() * 1000)
    results = run_backfill(lake_run[0], BackfillRequest(FIRST_DAY, END_DAY, "dim"), spark)
    assert {r.table for r in results} == {t.name for t in OUTPUTS}
    return t0, read_tables(lake_run[0], OUTPUTS, spark)


def _in_range(df: pd.DataFrame, start: date, end: date) -> pd.Series:
    if "dt" not in df:
        return pd.Series(True, index=df.index)
    return (df["dt"] >= start.isoformat()) & (df["dt"] < end.isoformat())


def test_backfill_from_ods_equals_the_stream(
    streamed: dict[str, pd.DataFrame], full_backfill: tuple[int, dict[str, pd.DataFrame]]
) -> None:
    _, after = full_backfill
    problems: list[str] = []
    for t in OUTPUTS:
        problems += compare(t, after[t.name], streamed[t.name])
        # every row of the range was rewritten by the backfill, none merely left in place
        key = list(t.record_key)
        rows = after[t.name][_in_range(after[t.name], FIRST_DAY, END_DAY)]
        assert len(rows), f"{t.name}: no rows in the range"
        both = rows.merge(streamed[t.name][[*key, "updated_ts"]], on=key, suffixes=("", "_s"))
        kept = both[both["updated_ts"] <= both["updated_ts_s"]]
        assert kept.empty, f"{t.name}: {len(kept)} rows not rewritten by the backfill"
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])


def test_corrected_formula_changes_exactly_its_range(
    lake_run: tuple[GridLakeSettings, str], spark: Any,
    streamed: dict[str, pd.DataFrame], full_backfill: tuple[int, dict[str, pd.DataFrame]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = lake_run[0]
    _, before = full_backfill
    day = date(2026, 3, 2)
    request = BackfillRequest(day, date(2026, 3, 3), "dws", Scope(device_types=("meter",)))
    # "corrected" upper limit of the qualified voltage band
    monkeypatch.setattr(summary, "V_HIGH", 236.0)
    run_backfill(settings, request, spark)
    corrected = read_tables(settings, OUTPUTS, spark)
    changed = {t.name for t in OUTPUTS if compare(t, corrected[t.name], before[t.name])}
    assert changed == {"dws_voltage", "ads_voltage_daily"}
    for name in changed:
        t = next(t for t in OUTPUTS if t.name == name)
        outside = ~_in_range(corrected[name], day, request.end)
        differences = compare(t, corrected[name][outside],
                              before[name][~_in_range(before[name], day, request.end)])
        assert not differences, differences[:5]
    # and the corrected day really is different: fewer qualified readings
    got, was = corrected["ads_voltage_daily"], before["ads_voltage_daily"]
    assert (got[_in_range(got, day, request.end)]["qualified"].sum()
            < was[_in_range(was, day, request.end)]["qualified"].sum())
    # re-applying the original formula restores the stream's values exactly
    monkeypatch.setattr(summary, "V_HIGH", 246.1)
    run_backfill(settings, request, spark)
    restored = read_tables(settings, OUTPUTS, spark)
    problems = [p for t in OUTPUTS for p in compare(t, restored[t.name], streamed[t.name])]
    assert not problems, problems[:20]


@pytest.mark.parametrize(("request_", "message"), [
    (BackfillRequest(date(2026, 3, 2), date(2026, 3, 2)), "empty range"),
    (BackfillRequest(date(2099, 1, 1), date(2099, 1, 2)), "future"),
    (BackfillRequest(FIRST_DAY, END_DAY, "gold"), "unknown layer"),
    (BackfillRequest(FIRST_DAY, END_DAY, scope=Scope(device_types=("toaster",))),
     "unknown device type"),
    (BackfillRequest(FIRST_DAY, END_DAY, scope=Scope(region="atlantis")), "unknown region"),
])
def test_bad_requests_fail_before_writing(
    lake_run: tuple[GridLakeSettings, str], spark: Any, streamed: dict[str, pd.DataFrame],
    request_: BackfillRequest, message: str,
) -> None:
    settings = lake_run[0]
    with pytest.raises(BackfillError, match=message):
        run_backfill(settings, request_, spark)
