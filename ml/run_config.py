"""A training run's settings from a config file and command-line options.

``gridlake ml train --config run.toml`` reads a TOML (or JSON) file with the sections
``[model]`` (:class:`~ml.models.anomalybert.AnomalyBertConfig` fields, plus ``size``),
``[train]`` (:class:`~ml.training.train.TrainConfig` fields), ``[degradation]``
(:class:`~ml.data.degradation.DegradationConfig` fields) and ``[data]`` (how to read the
files, :data:`DATA_KEYS`). Command-line options override the file, the file overrides the
defaults. Keys are checked against the dataclasses' own fields (``dataclasses.fields``),
so a field added to one of them is configurable without touching this module, and a
misspelt key is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ml.data.degradation import DegradationConfig
from ml.models.anomalybert import AnomalyBertConfig
from ml.training.train import TrainConfig

SECTIONS = ("model", "train", "degradation", "data")
#: Keys of the ``[data]`` section: the file options of ``gridlake ml train``.
DATA_KEYS = frozenset({
    "file", "test_file", "contract", "columns", "map", "time_column", "key_column",
    "label_column", "intervals", "interval_units", "step_ms",
})
#: Training fields that are not hyper-parameters (set by the command itself).
_TRAIN_EXCLUDED = frozenset({"degradation", "checkpoint_dir", "checkpoint_every", "progress"})
#: Defaults of ``gridlake ml train`` where they differ from :class:`TrainConfig`'s (a short
#: CPU run; the published configuration is ``TrainConfig()``'s).
CLI_TRAIN_DEFAULTS: dict[str, Any] = {"steps": 300, "lr": 1e-3, "batch_size": 16}


#: Bases of ``[degradation]`` (key ``preset``).
DEGRADATION_PRESETS: dict[str, Callable[..., DegradationConfig]] = {
    "published": DegradationConfig, "gridlake_v1": DegradationConfig.gridlake_v1}


class ConfigError(ValueError):
    """A config file or option that cannot be used (unknown key, bad value)."""


def load_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """The sections of a TOML (``.toml``) or JSON (``.json``) run config.

    Raises:
        ConfigError: Unreadable file, unknown section, or a section that is not a table.

    """
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table of sections {list(SECTIONS)}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; expected {list(SECTIONS)}")
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        section = raw.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        out[name] = section
    bad = sorted(set(out["data"]) - DATA_KEYS)
    if bad:
        raise ConfigError(f"[data]: unknown key(s) {bad}; expected {sorted(DATA_KEYS)}")
    return out


def parse_assignments(items: Iterable[str], option: str) -> dict[str, str]:
    """``key=value`` strings (a repeatable option) as a dict.

    Raises:
        ConfigError: An item without ``=`` or with an empty key.

    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option}: expected key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _coerce(value: Any, default: Any, annotation: str, where: str) -> Any:
    """``value`` (a string from the command line, or a TOML/JSON value) as the field's type.

    The type comes from the field's default (its annotation when the default is
    ``None``), so fields need no table of their own here.
    """
    if isinstance(value, str) and value.strip().lower() in ("none", "null") \
            and "None" in annotation:
        return None
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return word in ("true", "1", "yes")
        if isinstance(default, enum.Enum):
            return type(default)(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            item_type = type(default[0]) if default else str
            if default and len(items) != len(default):
                raise ValueError(f"expected {len(default)} values")
            return tuple(item_type(v) for v in items)
        kind: type = type(default) if default is not None else (
            int if "int" in annotation else float if "float" in annotation else str)
        if kind is int:
            number = float(value)
            if not number.is_integer() or isinstance(value, bool):
                raise ValueError(value)
            return int(number)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return kind(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {value!r} is not a valid value "
                          f"({annotation}): {err}") from err


def dataclass_values(cls: type, values: Mapping[str, Any], section: str,
                     exclude: Iterable[str] = ()) -> dict[str, Any]:
    """``values`` checked against ``cls``'s fields and coerced to their types.

    Raises:
        ConfigError: A key that is not a field of ``cls`` (or is excluded), or a bad value.

    """
    excluded = set(exclude)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in excluded}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"[{section}]: unknown key(s) {unknown}; expected some of "
                          f"{sorted(fields)}")
    out = {}
    for key, value in values.items():
        f = fields[key]
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out[key] = _coerce(value, default, str(f.type), f"[{section}] {key}")
    return out


def _merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers override earlier ones; ``None`` means "not given"."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update({k: v for k, v in layer.items() if v is not None})
    return out


def degradation_config(file_section: Mapping[str, Any],
                       options: Mapping[str, str]) -> DegradationConfig:
    """The degradation settings: a preset, then the file, then ``--degradation k=v``.

    The key ``preset`` picks the base: ``published`` (the default: the published
    algorithm) or ``gridlake_v1`` (GridLake's degradations before, kept for ablations);
    every other key overrides a field of that base.

    Raises:
        ConfigError: Unknown key, preset or invalid value (including the class's own
            checks).

    """
    merged = _merged(file_section, options)
    preset = str(merged.pop("preset", "published"))
    if preset not in DEGRADATION_PRESETS:
        raise ConfigError(f"[degradation]: unknown preset {preset!r}; expected one of "
                          f"{sorted(DEGRADATION_PRESETS)}")
    values = dataclass_values(DegradationConfig, merged, "degradation")
    try:
        return DEGRADATION_PRESETS[preset](**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[degradation]: {err}") from err


def model_config(n_channels: int, size: str, file_section: Mapping[str, Any],
                 options: Mapping[str, Any]) -> AnomalyBertConfig:
    """The network: the ``size`` preset (``small`` or ``default``), the file, the options.

    ``size`` in the file's ``[model]`` applies when the command line left it unset.

    Raises:
        ConfigError: Unknown key, bad value or an inconsistent network.

    """
    section = dict(file_section)
    size = str(options.get("size") or section.pop("size", None) or size)
    section.pop("size", None)
    if size not in ("small", "default"):
        raise ConfigError(f"[model] size: expected small or default, got {size!r}")
    cli = {k: v for k, v in options.items() if k != "size"}
    values = dataclass_values(AnomalyBertConfig, _merged(section, cli), "model",
                              exclude=("n_channels",))
    try:
        if size == "small":
            return AnomalyBertConfig.small(n_channels, **values)
        return AnomalyBertConfig(n_channels=n_channels, **values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[model]: {err}") from err


def train_config(file_section: Mapping[str, Any], options: Mapping[str, Any],
                 degradation: DegradationConfig, **fixed: Any) -> TrainConfig:
    """The training run: CLI defaults, then the file, then the options.

    Without an explicit ``warmup_steps`` the warm-up is a tenth of the steps.

    Args:
        file_section: The ``[train]`` section.
        options: Command-line values (``None``: not given).
        degradation: The degradation settings.
        **fixed: Settings of the command itself (progress, checkpoints).

    Raises:
        ConfigError: Unknown key or bad value.

    """
    values = dataclass_values(TrainConfig, _merged(CLI_TRAIN_DEFAULTS, file_section, options),
                              "train", exclude=_TRAIN_EXCLUDED)
    values.setdefault("warmup_steps", max(1, int(values["steps"]) // 10))
    try:
        return TrainConfig(**values, degradation=degradation, **fixed)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[train]: {err}") from err
