"""``gridlake images import``: reports, exit status 1 only for an error of the whole batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobs.images.job import FileReport, ImportResult
from ops.cli import images
from ops.cli.main import GROUPS
from tests.jobs.images.images_data import write_batch, write_descriptions


def test_registered_as_a_lazy_group() -> None:
    assert GROUPS["images"].module == "ops.cli.images"


def test_missing_column_exits_1_naming_it(tmp_path: Path, clean_env: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    rows = write_batch(tmp_path / "b", 2, ["TX-00001"])
    write_descriptions(tmp_path / "b" / "descriptions.csv", rows, ("file", "asset_id"))
    res = CliRunner().invoke(images.app, ["import", str(tmp_path / "b")])
    assert res.exit_code == 1
    assert "captured_ts" in res.output and "camera" in res.output


def test_refusals_are_reported_not_fatal(tmp_path: Path, clean_env: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    seen: dict[str, Any] = {}

    def fake(settings: Any, paths: list[Path], **kw: Any) -> ImportResult:
        seen.update(paths=paths, **kw)
        return ImportResult(kw["batch_id"], files=[
            FileReport("b", "a.png", "accepted", image_id="ab" * 32, bytes=10),
            FileReport("b", "x.png", "refused", "not_an_image", "not an image")], rows=1)

    monkeypatch.setattr(images, "run_import", fake)
    report = tmp_path / "r.json"
    res = CliRunner().invoke(images.app, ["import", str(tmp_path), "--batch-id", "b7",
                                          "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert seen["paths"] == [tmp_path] and seen["batch_id"] == "b7"
    body = json.loads(report.read_text())
    assert body["summary"]["refused:not_an_image"] == 1 and len(body["files"]) == 2
    assert "not_an_image" in res.output
