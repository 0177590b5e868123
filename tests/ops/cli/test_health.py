"""``gridlake health run``: dates and defaults reach the job; bad input is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from jobs.health.job import HealthRunResult, day_range
from ops.cli import health
from ops.cli.main import GROUPS


def test_registered_as_a_lazy_group() -> None:
    assert GROUPS["health"].module == "ops.cli.health"


def test_run_passes_the_range(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    seen: dict[str, Any] = {}

    def fake(settings: Any, start: date, end: date, **kw: Any) -> HealthRunResult:
        seen.update(start=start, end=end, **kw)
        day_range(start, end)  # the job's own check
        return HealthRunResult(start.isoformat(), end.isoformat(), rows=3)

    monkeypatch.setattr("jobs.health.job.run_health", fake)  # imported when the command runs
    res = CliRunner().invoke(health.app, ["run", "--start", "2026-03-01", "--end",
                                          "2026-03-03", "--no-serving"])
    assert res.exit_code == 0, res.output
    assert seen == {"start": date(2026, 3, 1), "end": date(2026, 3, 3), "serving": False,
                    "write": True}
    assert '"rows": 3' in res.output
    # default: yesterday (UTC), the daily run
    res = CliRunner().invoke(health.app, ["run"])
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert res.exit_code == 0 and seen["start"] == seen["end"] == yesterday
    # end before start: the job refuses, the command exits 1 with the reason
    res = CliRunner().invoke(health.app, ["run", "--start", "2026-03-05", "--end",
                                          "2026-03-01"])
    assert res.exit_code == 1 and "before start" in res.output
    res = CliRunner().invoke(health.app, ["run", "--start", "March"])
    assert res.exit_code != 0 and "not a yyyy-MM-dd date" in res.output
