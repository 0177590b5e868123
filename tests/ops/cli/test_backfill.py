"""``gridlake backfill import``: the dry run's report, errors, and the import followed by its
backfill (no services: the writes are faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.settings import GridLakeSettings
from jobs.batch.history.load import ImportResult
from jobs.batch.history.plan import ImportPlan
from ops.cli import backfill as cli
from tests.jobs.batch.history.history_data import METERS


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli_env(tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRIDLAKE_KAFKA__TOPIC_PREFIX", "cli.")


def test_cli_dry_run_reports_per_file(cli_env: None) -> None:
    res = CliRunner().invoke(cli.app, ["import", str(METERS), "--kind", "meter_reading",
                                   "--dry-run"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "12 rows: 8 to ods_meter_reading, 4 to ods_quarantine" in out
    assert "import:cli.meter.readings" in out and "dry run, nothing written" in out
    assert "bad_type:voltage_v" in out and "2026-03-01 … 2026-03-02 (2)" in out
    assert f"{METERS} line 6: bad_type:voltage_v" in out


def test_cli_errors_exit_2_with_the_reason(cli_env: None, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli.app, ["import", str(METERS), "--kind", "toaster", "--dry-run"])
    assert res.exit_code == 2
    assert "unknown kind 'toaster'" in res.output
    res = CliRunner().invoke(cli.app, ["import", str(tmp_path / "x.csv"), "--kind",
                                   "meter_reading"])
    assert res.exit_code == 2 and "no such file" in res.output


def test_cli_import_writes_then_offers_or_runs_the_backfill(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[ImportPlan] = []

    def fake_import(settings: GridLakeSettings, plan: ImportPlan, **kw: Any) -> ImportResult:
        written.append(plan)
        res = ImportResult(plan.kind, 1, plan.rows, plan.valid, plan.quarantined, 2)
        kw["on_progress"](res)
        return res

    backfills: list[dict[str, Any]] = []
    # the command imports them when it runs (lazily): patch them where they live
    monkeypatch.setattr("jobs.batch.history.load.run_import", fake_import)
    monkeypatch.setattr("jobs.batch.history.load.check_stream_stopped", lambda s: None)
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

