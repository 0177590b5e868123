from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
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


# -- files of the user's own shape (GenericFileSource) ---------------------------------

TINY_TOML = """
[model]
patch_size = 8
n_patches = 8
d_model = 16
n_heads = 2
d_ff = 32
n_layers = 1

[train]
steps = 3
batch_size = 4
scaler = "robust"

[data]
time_column = "time"
columns = ["p", "q"]
"""


def _generic_csv(path: Path, n: int, anomaly: tuple[int, int] | None = None) -> Path:
    import numpy as np
    import pandas as pd

    t = np.arange(n)
    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=n, freq="s"),
                          "p": np.sin(t / 10.0), "q": np.cos(t / 7.0), "note": "x"})
    frame["label"] = 0
    if anomaly:
        frame.loc[anomaly[0]:anomaly[1], "p"] += 4.0
        frame.loc[anomaly[0]:anomaly[1], "label"] = 1
    frame.to_csv(path, index=False)
    return path


def _local_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRIDLAKE_ML__REGISTRY", "local")
    return ModelRegistry(LocalBackend(tmp_path / "home" / "models" / "registry"))


def test_train_evaluate_score_a_generic_csv(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    reg = _local_registry(tmp_path, monkeypatch)
    normal = _generic_csv(tmp_path / "normal.csv", 600)
    test = _generic_csv(tmp_path / "test.csv", 300, anomaly=(100, 130))
    config = tmp_path / "run.toml"
    config.write_text(TINY_TOML)
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--source", "file", "--file", str(normal), "--test-file",
                            str(test), "--label-column", "label", "--config", str(config),
                            "--d-model", "24", "--degradation", "max_fraction=0.2",
                            "--weight-decay", "0.05"])
    assert r.exit_code == 0, r.output
    mid = str(_json(r.stdout)["model_id"])
    meta = reg.load(mid).metadata
    assert meta.data.contract == "generic" and meta.data.channels == ("p", "q")
    assert meta.data.step_ms == 1000
    # options override the file; the file overrides the defaults
    model = reg.load(mid).model.config
    assert (model.d_model, model.n_heads, model.window) == (24, 2, 64)
    train_cfg = meta.train_config
    assert train_cfg["steps"] == 3 and train_cfg["weight_decay"] == 0.05
    assert train_cfg["scaler"] == "robust"
    assert train_cfg["degradation"]["max_fraction"] == 0.2

    # the label column is remembered from training
    assert meta.data.details["label_column"] == "label"
    r = runner.invoke(app, ["evaluate", mid, "--source", "file", "--test-file", str(test),
                            "--no-save"])
    assert r.exit_code == 0, r.output
    assert _json(r.stdout)["anomaly_ratio"] == pytest.approx(31 / 300)

    out = tmp_path / "scores.csv"
    r = runner.invoke(app, ["score", mid, "--source", "file", "--file", str(test),
                            "--output", str(out), "--threshold", "0.5"])
    assert r.exit_code == 0, r.output
    frame = pd.read_csv(out)
    assert len(frame) == 300 and list(frame["step"]) == list(range(300))
    assert set(frame.columns) >= {"device_id", "ts_ms", "score", "anomaly"}
    assert frame["score"].between(0, 1).all()
    assert (frame["anomaly"] == (frame["score"] >= 0.5)).all()
    assert _json(r.stdout)["anomalous"] == int(frame["anomaly"].sum())
    # a generic model cannot score the lake: a clear error, not a traceback
    r = runner.invoke(app, ["score", mid, "--no-write"])
    assert r.exit_code == 2 and "generic file data" in r.output


def test_generic_cli_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _local_registry(tmp_path, monkeypatch)
    normal = _generic_csv(tmp_path / "normal.csv", 600)
    config = tmp_path / "run.toml"
    config.write_text(TINY_TOML)
    base = ["train", "--source", "file", "--file", str(normal), "--config", str(config)]
    runner = CliRunner()
    cases = [
        (["--degradation", "no_such=1"], "unknown key(s) ['no_such']"),
        (["--degradation", "max_fraction"], "expected key=value"),
        (["--scaler", "quantile"], "not a valid value"),
        (["--n-patches", "100"], "model window of 800 steps"),
        (["--columns", "p,note"], "non-numeric channel column(s) ['note']"),
        (["--columns", "p,zz"], "unknown column(s) ['zz']"),
        (["--contract", "ess_bms"], "need --contract generic"),
        (["--map", "p"], "expected src:channel"),
    ]
    for extra, message in cases:
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code == 2, (extra, r.output)
        assert message in r.output, (extra, r.output)
    config.write_text(TINY_TOML + "\n[train2]\n")
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "unknown section(s) ['train2']" in r.output


_BLOCKED_RUN = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyflink", "pyspark", "py4j", "kafka", "redis"):
            raise ImportError("blocked: " + name)
        return None

sys.meta_path.insert(0, Block())
from ops.cli.main import app
sys.argv = ["gridlake", *sys.argv[1:]]
app()
"""


def test_ml_on_files_needs_no_platform_packages(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    normal = _generic_csv(tmp_path / "normal.csv", 500)
    config = tmp_path / "run.toml"
    config.write_text(TINY_TOML)
    env = {**os.environ, "GRIDLAKE_HOME": str(tmp_path / "home"),
           "GRIDLAKE_ML__REGISTRY": "local",
           "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    run = subprocess.run([sys.executable, "-c", _BLOCKED_RUN, "ml", "--threads", "1", "train",
                          "--source", "file", "--file", str(normal), "--config", str(config)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    mid = _json(run.stdout)["model_id"]
    reg = ModelRegistry(LocalBackend(tmp_path / "home" / "models" / "registry"))
    assert [m.model_id for m in reg.list_models()] == [mid]
    # scoring a file must not need them either (it once imported the lake scorer: Redis)
    out = tmp_path / "scores.csv"
    run = subprocess.run([sys.executable, "-c", _BLOCKED_RUN, "ml", "--threads", "1", "score",
                          str(mid), "--source", "file", "--file", str(normal), "--output",
                          str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert len(pd.read_csv(out)) == 500
    # the finder does block: importing Spark in the same bootstrap fails
    blocked = subprocess.run([sys.executable, "-c", _BLOCKED_RUN.split("from ops")[0]
                              + "import pyspark\n"], capture_output=True, text=True, env=env,
                             timeout=60)
    assert blocked.returncode != 0 and "blocked: pyspark" in blocked.stderr


def test_a_generic_model_cannot_read_the_lake(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _local_registry(tmp_path, monkeypatch)
    normal = _generic_csv(tmp_path / "normal.csv", 600)
    config = tmp_path / "run.toml"
    config.write_text(TINY_TOML)
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--source", "file", "--file", str(normal), "--config",
                            str(config)])
    assert r.exit_code == 0, r.output
    mid = str(_json(r.stdout)["model_id"])
    r = runner.invoke(app, ["evaluate", mid, "--source", "lake", "--test-start", "2024-01-01",
                            "--test-end", "2024-01-02"])
    assert r.exit_code == 2 and "no message contract" in r.output, r.output
    # a .npz scored with the model: its channels must be mapped onto the model's
    import numpy as np

    npz = tmp_path / "m.npz"
    np.savez(npz, values=np.random.default_rng(0).normal(size=(200, 2)))
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["score", mid, "--source", "file", "--file", str(npz), "--output",
                            str(out)])
    assert r.exit_code == 2 and "differ from the model's ['p', 'q']" in r.output
    r = runner.invoke(app, ["score", mid, "--source", "file", "--file", str(npz), "--output",
                            str(out), "--map", "0:p", "--map", "1:q"])
    assert r.exit_code == 0, r.output
    assert _json(r.stdout)["steps"] == 200 and out.exists()
    r = runner.invoke(app, ["score", mid, "--source", "file", "--file", str(npz), "--output",
                            str(tmp_path / "s.txt"), "--map", "0:p", "--map", "1:q"])
    assert r.exit_code == 2 and "must be .csv or .parquet" in r.output
