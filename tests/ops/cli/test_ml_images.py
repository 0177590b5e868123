from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ml.registry import LocalBackend, ModelRegistry
from ops.cli.ml import app
from tests.ml.images.image_helpers import write_set

torch.set_num_threads(1)


def _json(output: str) -> dict[str, object]:
    return json.loads(output[output.index("{"):])  # type: ignore[no-any-return]


def test_images_train_evaluate_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRIDLAKE_ML__REGISTRY", "local")
    desc = write_set(tmp_path / "set", 60, 0.5, seed=4, size=32)
    (tmp_path / "set" / "img" / "0001.png").write_bytes(b"garbage")
    runner = CliRunner()
    r = runner.invoke(app, ["images", "train", "--kind", "autoencoder", "--data",
                            str(tmp_path / "set"), "--size", "32", "--width", "8",
                            "--epochs", "2"])
    assert r.exit_code == 0, r.output
    assert "skipped img/0001.png: not an image" in r.output
    out = _json(r.stdout)
    mid = str(out["model_id"])
    data = out["data"]
    assert out["kind"] == "image_autoencoder" and isinstance(out["threshold"], float)
    assert data["images"] == 59 and data["skipped"] == 1  # type: ignore[index]
    r = runner.invoke(app, ["images", "evaluate", mid, "--data", str(desc), "--split", "test",
                            "--save"])
    assert r.exit_code == 0, r.output
    ev = _json(r.stdout)
    assert ev["split"] == "test" and ev["n"] == 6
    reg = ModelRegistry(LocalBackend(tmp_path / "home" / "models" / "registry"))
    assert reg.image_metadata(mid).metrics == {k: v for k, v in ev.items()
                                               if k not in ("model_id", "kind", "split")}
    r = runner.invoke(app, ["images", "models"])
    assert r.exit_code == 0 and _json(r.stdout)["models"][0]["model_id"] == mid  # type: ignore[index]


def test_images_train_bad_input_is_a_clear_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRIDLAKE_ML__REGISTRY", "local")
    runner = CliRunner()
    r = runner.invoke(app, ["images", "train", "--kind", "classifier", "--data",
                            str(tmp_path)])
    assert r.exit_code == 2 and "no descriptions" in r.output
    desc = write_set(tmp_path / "set", 12, 0.0, seed=1, size=16)
    r = runner.invoke(app, ["images", "train", "--kind", "classifier", "--data", str(desc),
                            "--size", "16", "--epochs", "1"])
    assert r.exit_code == 2 and "3 normal and 3 defect" in r.output
    r = runner.invoke(app, ["images", "train", "--kind", "classifier"])
    assert r.exit_code == 2 and "--data" in r.output
    r = runner.invoke(app, ["images", "score", "--no-write"])
    assert r.exit_code == 2 and "gridlake ml images train" in r.output
