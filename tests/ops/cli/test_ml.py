from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ml.data.sources import write_series_file
from ml.registry import LocalBackend, ModelRegistry
from ops.cli.ml import app
from tests.ml.ml_helpers import SiteData

torch.set_num_threads(1)


def _json(output: str) -> dict[str, object]:
    return json.loads(output[output.index("{"):])  # type: ignore[no-any-return]


def test_train_transfer_evaluate_from_files(tmp_path: Path, site_a: SiteData,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRIDLAKE_ML__REGISTRY", "local")
    normal = write_series_file([s.slice(0, 3000) for s in site_a.normal], site_a.description,
                               tmp_path / "normal.parquet")
    test = write_series_file([s.slice(7000, 8640) for s in site_a.test], site_a.description,
                             tmp_path / "test.csv")
    runner = CliRunner()
    common = ["--source", "file", "--file", str(normal), "--test-file", str(test)]
    r = runner.invoke(app, ["train", *common, "--steps", "3", "--n-patches", "16"])
    assert r.exit_code == 0, r.output
    trained = _json(r.stdout)
    mid = str(trained["model_id"])
    assert isinstance(trained["threshold"], float) and trained["metrics"]
    r = runner.invoke(app, ["transfer", mid, *common, "--steps", "2", "--channels",
                            "soc_pct,max_cell_temp_c,cell_voltage_gap_mv"])
    assert r.exit_code == 0, r.output
    child = _json(r.stdout)
    assert child["parent_id"] == mid
    r = runner.invoke(app, ["evaluate", str(child["model_id"]), "--source", "file",
                            "--test-file", str(test), "--label-tuned"])
    assert r.exit_code == 0, r.output
    assert _json(r.stdout)["oracle_f1"] is not None
    reg = ModelRegistry(LocalBackend(tmp_path / "home" / "models" / "registry"))
    metas = {m.model_id: m for m in reg.list_models()}
    assert set(metas) == {mid, child["model_id"]}
    assert metas[str(child["model_id"])].data.channels == (
        "soc_pct", "max_cell_temp_c", "cell_voltage_gap_mv")


def test_help_lists_the_commands() -> None:
    r = CliRunner().invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("train", "transfer", "evaluate", "score", "serve"):
        assert cmd in r.output
