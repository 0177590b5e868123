from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ml.data.degradation import DegradationConfig
from ml.data.scaling import ScalerKind
from ml.run_config import (
    CLI_TRAIN_DEFAULTS,
    ConfigError,
    degradation_config,
    load_config_file,
    model_config,
    parse_assignments,
    train_config,
)


def test_toml_sections_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[model]\nd_model = 32\n[train]\nsteps = 7\n[data]\ntime_column = "t"\n')
    sections = load_config_file(path)
    assert sections["model"] == {"d_model": 32} and sections["degradation"] == {}
    assert sections["data"] == {"time_column": "t"}
    path.write_text("[modle]\nd_model = 32\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['modle'\]"):
        load_config_file(path)
    path.write_text("[data]\ntime_col = 't'\n")
    with pytest.raises(ConfigError, match=r"\[data\]: unknown key\(s\) \['time_col'\]"):
        load_config_file(path)
    path.write_text("[model\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config_file(path)


def test_json_config(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text('{"train": {"lr": 0.01}}')
    assert load_config_file(path)["train"] == {"lr": 0.01}


def test_model_preset_file_then_options() -> None:
    mc = model_config(3, "small", {"d_model": 32, "n_heads": 2}, {"d_model": 48})
    assert (mc.n_channels, mc.d_model, mc.n_heads, mc.patch_size) == (3, 48, 2, 8)
    published = model_config(3, "small", {"size": "default"}, {"n_patches": 4})
    assert (published.d_model, published.n_layers, published.n_patches) == (512, 6, 4)
    with pytest.raises(ConfigError, match=r"\[model\]: unknown key\(s\) \['width'\]"):
        model_config(3, "small", {"width": 3}, {})
    with pytest.raises(ConfigError, match="n_heads must divide d_model"):
        model_config(3, "small", {}, {"d_model": 30, "n_heads": 4})
    with pytest.raises(ConfigError, match="not a valid value"):
        model_config(3, "small", {"n_layers": 1.5}, {})


def test_train_defaults_file_and_options() -> None:
    tc = train_config({}, {}, DegradationConfig())
    assert (tc.steps, tc.lr, tc.batch_size) == (CLI_TRAIN_DEFAULTS["steps"],
                                                CLI_TRAIN_DEFAULTS["lr"], 16)
    assert tc.warmup_steps == tc.steps // 10
    tc = train_config({"steps": 50, "scaler": "zscore", "clip": 3},
                      {"steps": "40", "clip": "none", "weight_decay": None},
                      DegradationConfig(), progress=True)
    assert (tc.steps, tc.scaler, tc.clip, tc.progress) == (40, ScalerKind.ZSCORE, None, True)
    assert tc.weight_decay == 0.01  # None: not given on the command line
    with pytest.raises(ConfigError, match="not a valid value"):
        train_config({"scaler": "quantile"}, {}, DegradationConfig())
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['degradation'\]"):
        train_config({"degradation": {}}, {}, DegradationConfig())


def test_degradation_maps_every_field_by_name() -> None:
    fields = dataclasses.fields(DegradationConfig)
    base = DegradationConfig()
    for f in fields:
        value = getattr(base, f.name)
        if isinstance(value, bool | int | float) and not isinstance(value, bool):
            # the same value, given as text, is accepted for every numeric field
            assert getattr(degradation_config({}, {f.name: str(value)}), f.name) == value
    first_float = next(f.name for f in fields if type(getattr(base, f.name)) is float)
    assert getattr(degradation_config({}, {first_float: "0.0"}), first_float) == 0.0
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['no_such_field'\]"):
        degradation_config({}, {"no_such_field": "1"})
    with pytest.raises(ConfigError, match="not a valid value"):
        degradation_config({first_float: "abc"}, {})


def test_assignments() -> None:
    assert parse_assignments(["a=1", " b = x=y "], "--degradation") == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignments(["a"], "--degradation")


def test_degradation_presets() -> None:
    assert degradation_config({}, {}) == DegradationConfig()
    old = degradation_config({"preset": "gridlake_v1"}, {})
    assert old == DegradationConfig.gridlake_v1()
    # a key overrides a field of the preset it was given with
    tuned = degradation_config({"preset": "gridlake_v1"}, {"channel_fraction": "0.3"})
    assert tuned == DegradationConfig.gridlake_v1(channel_fraction=0.3)
    with pytest.raises(ConfigError, match="unknown preset 'v0'"):
        degradation_config({}, {"preset": "v0"})
