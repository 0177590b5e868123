"""``gridlake run``'s plan: every part, history once, a first model when the registry is empty."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra.settings import GridLakeSettings
from ops import run


class _Done:
    returncode = 0
    stdout = "{}"
    stderr = ""


def test_history_is_skipped_once_loaded_or_while_the_stream_runs(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Stopped:
        running = False

    monkeypatch.setattr(run.control, "status", lambda s: Stopped())
    marker = settings.run / run.HISTORY_MARKER
    marker.parent.mkdir(parents=True)
    marker.write_text('{"start": "2026-03-01", "end": "2026-03-02"}')
    # a loaded span (the marker) is not loaded again: no Spark session is started
    monkeypatch.setattr("infra.spark.spark_session", lambda *a: pytest.fail("Spark started"))
    assert run.load_history(settings) is None
    assert run.loaded_history(settings) == (date(2026, 3, 1), date(2026, 3, 2))
    marker.unlink()

    class Running:
        running = True

    monkeypatch.setattr(run.control, "status", lambda s: Running())
    assert run.load_history(settings) is None  # two writers on the same tables: skipped
    assert run.loaded_history(settings) is None


def test_no_history_when_the_span_is_zero(settings: GridLakeSettings) -> None:
    settings = settings.model_copy(update={
        "startup": settings.startup.model_copy(update={"history_days": 0})})
    assert run.load_history(settings) is None


def test_history_span_is_whole_days_before_today(settings: GridLakeSettings) -> None:
    assert run.history_span(settings, date(2026, 3, 10)) == (date(2026, 3, 9), date(2026, 3, 10))


@pytest.mark.parametrize("empty", [True, False])
def test_a_small_model_is_trained_only_when_the_registry_is_empty(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch, empty: bool
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(run, "registry_empty", lambda s: empty)
    def fake_run(cmd: list[str], **kw: Any) -> _Done:
        calls.append(cmd)
        return _Done()

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert run.train_first_model(settings) is empty
    if empty:
        cmd = calls[0]
        assert cmd[cmd.index("train") - 1] == "ml"
        assert cmd[cmd.index("--size") + 1] == "small"
        assert cmd[cmd.index("--steps") + 1] == str(settings.startup.train_steps)
    else:
        assert calls == []


def test_run_starts_every_part_in_order(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []

    class FakeStack:
        def __init__(self, s: GridLakeSettings) -> None:
            pass

        def up(self) -> Any:
            order.append("stack")
            return type("R", (), {"started": ["kafka"]})()

    span = (date(2026, 3, 1), date(2026, 3, 2))

    def history(s: GridLakeSettings, on_progress: Any = None) -> tuple[date, date]:
        order.append("history")
        run_dir = s.run
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / run.HISTORY_MARKER).write_text('{"start": "2026-03-01", "end": "2026-03-02"}')
        return span

    monkeypatch.setattr(run, "Stack", FakeStack)
    monkeypatch.setattr(run, "load_history", history)
    def step(name: str, value: Any) -> Any:
        def fake(s: GridLakeSettings) -> Any:
            order.append(name)
            return value
        return fake

    monkeypatch.setattr(run.control, "start", step("stream", 11))
    monkeypatch.setattr(run.control, "wait_running", lambda s: None)
    monkeypatch.setattr(run.api_service, "start", step("api", 12))
    monkeypatch.setattr(run, "train_first_model", step("model", True))
    monkeypatch.setattr(run, "start_ml", step("ml", 13))
    monkeypatch.setattr(run, "start_simulator", step("simulator", 14))
    said: list[tuple[str, str]] = []
    result = run.run_all(settings, lambda step, msg: said.append((step.name, msg)))
    assert order == [s.name for s in run.STEPS]
    assert result.pids == {"stream": 11, "api": 12, "ml": 13, "simulator": 14}
    # every step says how long it is expected to take before it starts
    assert [n for n, m in said if m.startswith("expected")] == order
    assert result.done["model"].startswith("trained and registered")
    # the printed example asks for the last whole day of history
    assert "start=2026-03-01T00:00:00Z&end=2026-03-02T00:00:00Z" in result.links["API example"]
    assert result.links["ML service"].endswith("/health")


# ------------------------------------------------------------------------- integration
@pytest.mark.integration
@pytest.mark.slow
def test_history_puts_a_whole_day_into_ods_and_ads(
    stack: GridLakeSettings, tmp_path: Path
) -> None:
    """The first run's history step on a small fleet, in a lake of its own."""
    import uuid

    from infra.spark import read_table, spark_scope
    from lakehouse.contracts.tables import ODS_TABLES, TABLES
    from ops.bench.backfill import _cleanup, bench_root, isolated

    key = "h" + uuid.uuid4().hex[:8]
    s = isolated(stack, key, meters=20).model_copy(
        update={"home": tmp_path / "home", "jars_dir": stack.jars})
    phases: list[tuple[str, int, int]] = []
    try:
        span = run.load_history(s, lambda phase, done, total: phases.append(
            (phase, done, total)))
        assert span is not None
        day = span[0].isoformat()
        assert ("ods", 1, 1) in phases
        assert phases[-1][0] == "backfill" and phases[-1][1] == phases[-1][2] > 0
        with spark_scope(s, "test-history-step") as spark:
            ods = read_table(spark, s, ODS_TABLES["meter_reading"])
            assert ods.filter(f"dt = '{day}'").count() >= 20 * 96  # every 15 min, all meters
            by_name = {t.name: t for t in TABLES}
            # the README's example: MTR-000001's quarter hours of the last history day
            energy = read_table(spark, s, by_name["ads_meter_energy_15min"]).filter(
                f"dt = '{day}' AND device_id = 'MTR-000001'")
            assert energy.count() >= 90
            # a whole day: the daily peak is no longer the valley
            daily = read_table(spark, s, by_name["ads_load_daily"]).filter(
                f"dt = '{day}'").collect()
            assert daily and any(r["peak_load_kw"] > r["valley_load_kw"] for r in daily)
        assert run.load_history(s) is None  # the marker: nothing is redone
    finally:
        _cleanup(s, bench_root(key))


def test_cli_run_prints_each_steps_expected_duration_and_the_links(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ops.cli.main import app

    def fake_run_all(s: GridLakeSettings, progress: Any, on_history: Any) -> run.RunResult:
        for step in run.STEPS:
            progress(step, f"expected {step.expected}")
            if step.name == "history":
                on_history("ods", 1, 1)
                on_history("backfill", 22, 22)
            progress(step, "done in 1 s")
        return run.RunResult(links=run.links(s, (date(2026, 3, 1), date(2026, 3, 2))))

    monkeypatch.setattr(run, "run_all", fake_run_all)
    monkeypatch.setenv("GRIDLAKE_HOME", str(settings.home))
    res = CliRunner().invoke(app, ["run"], terminal_width=200)
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    for step in run.STEPS:
        assert f"{step.name}: expected {step.expected}" in out
    assert "start=2026-03-01T00:00:00Z&end=2026-03-02T00:00:00Z" in out
    assert "ready in" in out
