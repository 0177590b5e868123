"""The health job's pieces that need no lake: ranges, and what absent tables read as."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest

from infra.settings import GridLakeSettings
from jobs.health.daily import assess
from jobs.health.job import HealthJobError, day_range, read_inputs, reconcile
from lakehouse.time import DAY_MS, parse_time_ms
from tests.jobs.health.test_daily import DAY0, _inputs


def test_day_range_is_whole_days_end_inclusive() -> None:
    s, e = day_range(date(2026, 3, 1), date(2026, 3, 3))
    assert s == parse_time_ms("2026-03-01") and e - s == 3 * DAY_MS
    with pytest.raises(HealthJobError, match="before start"):
        day_range(date(2026, 3, 3), date(2026, 3, 1))


class _Conf:
    def set(self, key: str, value: str) -> None:
        pass


class _Spark:
    conf = _Conf()

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an absent table must not be read ({name})")


def test_absent_tables_read_as_empty_or_not_run(settings: GridLakeSettings) -> None:
    inputs = read_inputs(_Spark(), settings, 0, DAY_MS, exists=lambda t: False)
    assert inputs.assets.empty and inputs.dga.empty and inputs.tx_daily.empty
    # the anomaly factor must tell "scoring never ran" from "nothing found"
    assert inputs.anomalies is None and inputs.scored is None and not inputs.previous


def test_reconcile_rewrites_only_what_changed() -> None:
    run = assess(_inputs(), DAY0, DAY0 + 2 * DAY_MS, 2_000)
    stored = run.assign(updated_ts=1_000)
    # a rerun with the same inputs: nothing to write, every row keeps its stored stamp
    rec = reconcile(run, stored, 2_000)
    assert rec.changed.empty and rec.stale.empty
    assert set(rec.rows["updated_ts"]) == {1_000}
    # one stored row differs, one stored row is no longer produced, one is a later run's
    stored.loc[0, "category"] = "poor"
    extra = stored.iloc[[0, 0]].assign(asset_id=["TX-GONE", "TX-LATER"],
                                       updated_ts=[1_000, 3_000])
    rec = reconcile(run, pd.concat([stored, extra], ignore_index=True), 2_000)
    assert len(rec.changed) == 1 and rec.changed.iloc[0]["updated_ts"] == 2_000
    assert rec.changed.iloc[0]["asset_id"] == run.iloc[0]["asset_id"]
    assert list(rec.stale["asset_id"]) == ["TX-GONE"]
    # nothing stored yet: everything is new
    first = reconcile(run, pd.DataFrame(columns=list(run.columns)), 2_000)
    assert len(first.changed) == len(run) and first.stale.empty
