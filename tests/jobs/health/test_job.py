"""The health job's pieces that need no lake: ranges, and what absent tables read as."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from infra.settings import GridLakeSettings
from jobs.health.job import HealthJobError, day_range, read_inputs
from lakehouse.time import DAY_MS, parse_time_ms


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
