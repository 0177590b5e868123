from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.serde import loads
from mock_devices.replay import SAMPLE_PATH
from ops.cli.simulate import app

runner = CliRunner()
BASE = ["run", "--meters", "60", "--start", "2024-06-01", "--duration", "30m", "--quiet"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--meters", "-5"], "meters must be at least 1"),
        (["--scale", "0"], "scale"),
        (["--rate", "-1"], "--rate must be positive"),
        (["--fault", "bogus"], "unknown fault 'bogus'"),
        (["--fault", "meter_stuck:TX-00001"], "no meter"),
        (["--defects", "dup=0.1"], "unknown defect"),
        (["--meter-interval", "7"], "meter interval"),
        (["--speedup", "0"], "--speedup must be positive"),
        (["--devices", "meter,toaster"], "toaster"),
        (["--mode", "warp"], "unknown --mode"),
        (["--connect-retries", "0"], "--connect-retries"),
    ],
)
def test_bad_options_fail_before_publishing(args: list[str], needle: str) -> None:
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_reversed_range() -> None:
    result = runner.invoke(
        app, ["run", "--start", "2024-06-01", "--end", "2024-05-01", "--dry-run", "--quiet"]
    )
    assert result.exit_code == 2 and "date range is reversed" in result.output


def test_historical_needs_a_range() -> None:
    result = runner.invoke(app, ["run", "--mode", "historical", "--dry-run", "--quiet"])
    assert result.exit_code == 2 and "needs --start" in result.output


def test_dry_run_summary_json(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    result = runner.invoke(
        app,
        [
            *BASE,
            "--dry-run",
            "--json",
            "--fault",
            "meter_stuck",
            "--defects",
            "duplicate=0.01",
            "--labels-file",
            str(labels),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["total_failed"] == 0 and summary["sent"]["meter.readings"] == 120
    kinds = {loads(x)["kind"] for x in labels.read_bytes().splitlines()}
    assert kinds == {"fault", "defect"}


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    result = runner.invoke(app, [*BASE, "--output", str(out), "--devices", "meter,feeder"])
    assert result.exit_code == 0, result.output
    topics = {loads(x)["topic"] for x in out.read_bytes().splitlines()}
    assert topics == {"meter.readings", "scada.feeder"}
    assert "total" in result.output and "msg/s" in result.output


def test_unreachable_kafka_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GRIDLAKE_KAFKA__BOOTSTRAP", f"127.0.0.1:{port}")
    result = runner.invoke(
        app, [*BASE, "--connect-retries", "1", "--connect-timeout", "0.5", "--no-create-topics"]
    )
    assert result.exit_code == 1
    assert "unreachable after 1 attempts" in result.output and "nothing was sent" in result.output


def test_replay_dry_run() -> None:
    result = runner.invoke(
        app,
        [
            "replay",
            "--path",
            str(SAMPLE_PATH),
            "--meters",
            "2",
            "--max-rows",
            "100",
            "--dry-run",
            "--json",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["sent"] == {"device.registry": 2, "meter.readings": 200}
    bad = runner.invoke(app, ["replay", "--path", "/nope.txt", "--dry-run"])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_catalogue_and_topology() -> None:
    result = runner.invoke(app, ["catalogue"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "transformer_overload" in result.output
    assert "malformed_json" in result.output
    result = runner.invoke(app, ["topology", "--meters", "500"])
    assert result.exit_code == 0 and "500" in result.output
