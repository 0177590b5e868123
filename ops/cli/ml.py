"""``gridlake ml``: train, transfer, evaluate and serve AnomalyBERT models.

Data comes from the seeded simulator (``--source sim``: a normal period for training
and a labelled test period with the benchmark's fault plan), from files
(``--source file --file normal.parquet [--test-file labelled.parquet]``, see
:class:`ml.data.sources.FileSource`) or from the lake (``--source lake --start … --end …
[--test-start … --test-end …]``: the DWD table of ``--contract``, see
:class:`ml.data.lake_source.LakeSource`). Models go to the registry ``settings.ml`` describes
(``--registry local`` overrides it). ``gridlake ml score`` scores a range of the lake with
a registered model and writes scores, intervals and alarms (:mod:`ml.lake_scoring`).

``gridlake ml images ...`` does the same for equipment images: ``train --kind
classifier|autoencoder --data FOLDER | --lake``, ``evaluate``, ``score`` (lake images into
``ads_image_anomaly``, :mod:`ml.images.scoring`) and ``models``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from infra.settings import GridLakeSettings
    from ml.data.sources import DataDescription, FileSource, GenericFileSource

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

app = typer.Typer(name="ml", help="Equipment anomaly detection (AnomalyBERT).",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _main(
    threads: int = typer.Option(
        0, help="Torch CPU threads (0: torch's default). On a small shared machine 1 is "
                "often much faster than oversubscribing busy cores."),
) -> None:
    """Equipment anomaly detection (AnomalyBERT)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


class SourceKind(StrEnum):
    """Where the series come from."""

    SIM = "sim"
    FILE = "file"
    LAKE = "lake"


class Size(StrEnum):
    """Network size preset."""

    SMALL = "small"
    DEFAULT = "default"


@dataclass
class _Data:
    normal: list[Any]
    test: list[Any] | None
    description: Any


@dataclass(frozen=True)
class _LakeQuery:
    """The lake options of a command (``--source lake``)."""

    start: str | None
    end: str | None
    test_start: str | None
    test_end: str | None
    devices: str | None
    site: str | None
    step_ms: int | None


def _ms(text: str, option: str) -> int:
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from lakehouse.time import parse_time_ms

    try:
        return parse_time_ms(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint=option) from None


def _lake_data(settings: GridLakeSettings, q: _LakeQuery, contract: str,
               chans: tuple[str, ...] | None, with_test: bool) -> _Data:
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from infra.spark import spark_scope
    from ml.data.lake_source import LakeSource, check_disjoint, parse_devices

    # lazy: see above
    from ml.data.sources import contract_by_name

    if q.start is None or q.end is None:
        raise typer.BadParameter("--source lake needs --start and --end (the training range)")
    train_range = (_ms(q.start, "--start"), _ms(q.end, "--end"))
    test_range = None
    if with_test and (q.test_start or q.test_end):
        if q.test_start is None or q.test_end is None:
            raise typer.BadParameter("give both --test-start and --test-end")
        test_range = (_ms(q.test_start, "--test-start"), _ms(q.test_end, "--test-end"))
        check_disjoint(train_range, test_range)
    c = contract_by_name(contract)
    devices = parse_devices(q.devices)
    with spark_scope(settings, "gridlake-ml-train") as spark:
        src = LakeSource(settings, *train_range, c, devices, q.site, chans, q.step_ms,
                         spark=spark)
        normal = src.load()
        test = None
        if test_range is not None:
            # the test grid is the training grid, whatever spacing the test rows show
            test = LakeSource(settings, *test_range, c, devices, q.site, chans,
                              src.description().step_ms, labels=True, spark=spark).load()
        return _Data(normal, test, src.description())


@dataclass(frozen=True)
class _FileOpts:
    """How to read a file of the user's own shape (:class:`GenericFileSource`)."""

    time_column: str | None = None
    key_column: str | None = None
    columns: tuple[str, ...] | None = None
    mapping: tuple[tuple[str, str], ...] = ()
    label_column: str | None = None
    intervals: Path | None = None
    interval_units: str = "auto"
    step_ms: int | None = None

    def given(self) -> bool:
        """Whether any option of a generic file is set."""
        return any(v not in (None, (), "auto") for v in dataclasses.astuple(self))

    def unlabelled(self) -> _FileOpts:
        """The same options without labels, for the (normal) training file.

        Training does not use its labels, so it needs no label column.
        """
        return dataclasses.replace(self, intervals=None, label_column=None)

    @classmethod
    def build(cls, values: dict[str, Any]) -> _FileOpts:
        """From option values and ``[data]`` keys.

        ``columns`` is a list or ``a,b``; ``map`` a table, or a list of ``src:channel``
        items (each possibly ``src:channel,src2:channel2``).
        """
        columns = values.get("columns")
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",") if c.strip()]
        raw_map = values.get("map") or ()
        if isinstance(raw_map, dict):
            pairs = [(str(k), str(v)) for k, v in raw_map.items()]
        else:
            items = [raw_map] if isinstance(raw_map, str) else list(raw_map)
            pairs = []
            for item in (p.strip() for i in items for p in str(i).split(",") if p.strip()):
                src, sep, dst = item.partition(":")
                if not sep or not src.strip() or not dst.strip():
                    raise typer.BadParameter(f"expected src:channel, got {item!r}",
                                             param_hint="--map")
                pairs.append((src.strip(), dst.strip()))
        intervals = values.get("intervals")
        step = values.get("step_ms")
        return cls(values.get("time_column"), values.get("key_column"),
                   None if columns is None else tuple(str(c) for c in columns), tuple(pairs),
                   values.get("label_column"), None if intervals is None else Path(intervals),
                   str(values.get("interval_units") or "auto"),
                   None if step is None else int(step))

    def over(self, base: _FileOpts) -> _FileOpts:
        """``base`` with every option set here replacing its value."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if getattr(self, f.name) not in (None, (), "auto")}
        return dataclasses.replace(base, **given)

    @classmethod
    def of_model(cls, data: DataDescription, labels: bool) -> _FileOpts:
        """The options a generic model's data was read with (its stored details)."""
        d = data.details
        return cls.build({"time_column": d.get("time_column"), "key_column": d.get("key_column"),
                          "columns": d.get("columns"), "map": d.get("map"),
                          "label_column": d.get("label_column") if labels else None,
                          "step_ms": data.step_ms})


def _has_contract_columns(path: Path, contract_name: str) -> bool:
    """Whether a CSV/Parquet file has the key and time columns of a message contract."""
    import pandas as pd
    import pyarrow.parquet as pq

    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from ml.data.sources import contract_by_name

    c = contract_by_name(contract_name)
    try:
        if path.suffix.lower() == ".csv":
            names = set(pd.read_csv(path, nrows=0).columns)
        elif path.suffix.lower() == ".parquet":
            names = set(pq.read_schema(path).names)
        else:
            return False
    except (OSError, ValueError):
        return False  # the generic reader reports what is wrong with the file
    return {c.key_field, c.event_time_field} <= names


def _file_source(path: Path, contract: str | None, chans: tuple[str, ...] | None,
                 opts: _FileOpts) -> FileSource | GenericFileSource:
    """The reader of ``path``: GridLake's contract-shaped files or the user's own shape.

    Generic when ``--contract generic``, when a generic option (``--time-column``,
    ``--columns``, ``--map``...) is given, for ``.npy``/``.npz``, or, with no
    ``--contract``, when the file lacks the ``ess_bms`` key and time columns.
    """
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from lakehouse.contracts.messages import ESS_BMS

    # lazy: see above
    from ml.data.sources import GENERIC_CONTRACT, FileSource, GenericFileSource, contract_by_name

    generic = (contract == GENERIC_CONTRACT or opts.given()
               or path.suffix.lower() in (".npy", ".npz")
               or (contract is None and not _has_contract_columns(path, ESS_BMS.name)))
    if not generic:
        return FileSource(path, contract_by_name(contract or ESS_BMS.name), chans)
    if contract not in (None, GENERIC_CONTRACT):
        raise typer.BadParameter(f"the file options of generic data need --contract "
                                 f"{GENERIC_CONTRACT} (or none), not {contract!r}")
    if chans is not None and opts.columns is None:
        opts = dataclasses.replace(opts, columns=chans)  # --channels names columns here
    return GenericFileSource(path, opts.time_column, opts.key_column, opts.columns,
                             opts.mapping, opts.label_column, opts.intervals,
                             opts.interval_units, opts.step_ms)


def _stored_is_matrix(data: DataDescription) -> bool:
    """Whether a generic model was trained on a ``.npy``/``.npz`` matrix."""
    return Path(data.details.get("path", "")).suffix.lower() in (".npy", ".npz")


def _model_file_series(path: Path, data: DataDescription, opts: _FileOpts,
                       labels: bool) -> list[Any]:
    """A file's series for a registered model: read like its training data, same channels.

    A generic model's file is read with the options it was trained with (its stored data
    details), each given option replacing the stored one.

    Raises:
        SourceError: The file does not yield the model's channels.

    """
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from ml.data.sources import (
        GENERIC_CONTRACT,
        FileSource,
        GenericFileSource,
        SourceError,
        contract_by_name,
    )

    if data.contract != GENERIC_CONTRACT:
        return FileSource(path, contract_by_name(data.contract), data.channels).load()
    stored = _FileOpts.of_model(data, labels)
    if path.suffix.lower() in (".npy", ".npz") or _stored_is_matrix(data):
        # a matrix has no named time/key/label columns, and a matrix model's column indices
        # mean nothing in a table: only the grid carries over
        stored = _FileOpts(step_ms=data.step_ms)
    o = opts.over(stored)
    desc, series = GenericFileSource(path, o.time_column, o.key_column, o.columns, o.mapping,
                                     o.label_column, o.intervals, o.interval_units,
                                     o.step_ms).read()
    if desc.channels != data.channels:
        raise SourceError(f"{path}: channels {list(desc.channels)} differ from the model's "
                          f"{list(data.channels)} (use --columns/--map)")
    return series


def _settings(registry: str | None) -> GridLakeSettings:
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from infra.settings import load_settings

    settings = load_settings()
    if registry:
        settings = settings.model_copy(
            update={"ml": settings.ml.model_copy(update={"registry": registry})})
    return settings


def _data(source: SourceKind, file: Path | None, test_file: Path | None, contract: str | None,
          channels: str | None, seed: int, meters: int, interval: int, hours: float,
          with_test: bool = True, lake: _LakeQuery | None = None,
          settings: GridLakeSettings | None = None,
          file_opts: _FileOpts | None = None) -> _Data:
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from lakehouse.contracts.messages import ESS_BMS

    # lazy: see above
    from ml.data.sources import GenericFileSource

    # lazy: see above
    from mock_devices.ml_source import SiteScenario

    chans = tuple(c.strip() for c in channels.split(",") if c.strip()) if channels else None
    if source is SourceKind.LAKE:
        if lake is None or settings is None:
            raise typer.BadParameter("--source lake needs the lake options")
        return _lake_data(settings, lake, contract or ESS_BMS.name, chans, with_test)
    if source is SourceKind.SIM:
        if contract not in (None, ESS_BMS.name):
            raise typer.BadParameter("the simulator scenario is for ess_bms")
        test_day = date(2024, 6, 1) + timedelta(days=math.ceil(hours / 24.0))
        site = SiteScenario(f"sim-seed{seed}", seed=seed, meters=meters,
                            ess_interval_s=interval, channels=chans, train_hours=hours,
                            test_start=test_day.isoformat())
        normal_src = site.normal_source()
        test = site.test_source().load() if with_test else None
        return _Data(normal_src.load(), test, normal_src.description())
    if file is None:
        raise typer.BadParameter("--source file needs --file")
    opts = file_opts or _FileOpts()
    src = _file_source(file, contract, chans, opts.unlabelled())
    test_series = (_file_source(test_file, contract, chans, opts).load() if test_file
                   else None)
    desc = src.description()
    if isinstance(src, GenericFileSource) and opts.label_column:
        # remembered for `evaluate`, which reads labelled files like the test file
        desc = dataclasses.replace(desc, details={**desc.details,
                                                  "label_column": opts.label_column})
    return _Data(src.load(), test_series, desc)


def _guarded(make: Callable[[], _T]) -> _T:
    """Run ``make``; bad data or a lake failure ends the command with a one-line error.

    Data problems (no readings, too short a series, unknown channel or device, a lake that
    cannot be read) are all ``ValueError`` subclasses here, registry problems
    ``RegistryError``, HDFS not answering ``LakeError``.
    """
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from infra.lake import LakeError

    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.registry import RegistryError

    try:
        return make()
    except (ValueError, RegistryError, LakeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


def _echo(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


SOURCE = typer.Option(SourceKind.SIM, help="sim (seeded simulator), file or lake (DWD).")
FILE = typer.Option(None, help="Normal (training) series file, .parquet or .csv.")
TEST_FILE = typer.Option(None, help="Labelled test series file (fault_type column).")
CONTRACT = typer.Option(None, help="Message contract of the channels (default ess_bms); "
                                   "for files detected, 'generic' for a file of your own "
                                   "shape.")
CHANNELS = typer.Option(None, help="Comma-separated channel subset (default: all numeric).")
TIME_COLUMN = typer.Option(None, help="Generic file: time column (epoch ms or date-times; "
                                      "default: none, rows are --step-ms apart).")
KEY_COLUMN = typer.Option(None, help="Generic file: device column (default: one series).")
COLUMNS = typer.Option(None, help="Generic file: comma-separated channel columns (matrices: "
                                  "indices or chN); default: all other columns.")
MAP = typer.Option(None, "--map", help="Generic file: rename a column, src:channel "
                                        "(repeatable).")
LABEL_COLUMN = typer.Option(None, help="Generic file: label column (0/1, boolean or fault "
                                       "types).")
INTERVALS = typer.Option(None, help="Generic file: labelled intervals (CSV/JSON of "
                                    "start,end[,type[,device]]) of the labelled file.")
INTERVAL_UNITS = typer.Option("auto", help="Interval bounds: time, steps or auto (time "
                                           "when the data has times).")
CONFIG = typer.Option(None, help="Run config, TOML or JSON: [model], [train], "
                                 "[degradation], [data]; options override it.")
SEED = typer.Option(7, help="Simulator seed (the site).")
METERS = typer.Option(50, help="Simulated fleet size (sets ESS ratings).")
INTERVAL = typer.Option(10, help="Simulated BMS interval in seconds.")
HOURS = typer.Option(24.0, help="Hours of normal simulated data.")
REGISTRY = typer.Option(None, help="Override settings.ml.registry: local or hdfs.")
START = typer.Option(None, help="Lake: first event time of the training range (ISO, UTC).")
END = typer.Option(None, help="Lake: end of the training range (exclusive).")
TEST_START = typer.Option(None, help="Lake: start of the labelled test range (labels from "
                                     "ods_sim_label).")
TEST_END = typer.Option(None, help="Lake: end of the test range (exclusive).")
DEVICES = typer.Option(None, help="Lake: comma-separated device ids (default: all).")
SITE = typer.Option(None, help="Lake: only devices of this substation.")
STEP_MS = typer.Option(None, help="Grid spacing in ms (default: inferred from the times; "
                                   "1000 for a generic file without times).")


def _file_options(values: dict[str, Any], data_section: dict[str, Any]) -> _FileOpts:
    """The generic file options: the ``[data]`` section, overridden by the options."""
    merged = {**data_section, **{k: v for k, v in values.items() if v not in (None, [], "auto")}}
    return _FileOpts.build(merged)


@app.command()
def train(
    source: SourceKind = SOURCE,
    file: Path | None = FILE,
    test_file: Path | None = TEST_FILE,
    contract: str | None = CONTRACT,
    channels: str | None = CHANNELS,
    time_column: str | None = TIME_COLUMN,
    key_column: str | None = KEY_COLUMN,
    columns: str | None = COLUMNS,
    map_: list[str] | None = MAP,
    label_column: str | None = LABEL_COLUMN,
    intervals: Path | None = INTERVALS,
    interval_units: str = INTERVAL_UNITS,
    config: Path | None = CONFIG,
    seed: int = SEED,
    meters: int = METERS,
    interval: int = INTERVAL,
    hours: float = HOURS,
    size: Size | None = typer.Option(None, help="small (CPU, default) or default (published)."),
    n_layers: int | None = typer.Option(None, help="Encoder layers."),
    d_model: int | None = typer.Option(None, help="Transformer width."),
    n_heads: int | None = typer.Option(None, help="Attention heads (divide --d-model)."),
    d_ff: int | None = typer.Option(None, help="Feed-forward width."),
    dropout: float | None = typer.Option(None, help="Dropout."),
    patch_size: int | None = typer.Option(None, help="Override the patch size."),
    n_patches: int | None = typer.Option(None, help="Override the patches per window."),
    steps: int | None = typer.Option(None, help="Training steps (default 300)."),
    lr: float | None = typer.Option(None, help="Peak learning rate (default 1e-3; "
                                               "published: 1e-4)."),
    batch_size: int | None = typer.Option(None, help="Windows per step (default 16)."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay."),
    warmup_steps: int | None = typer.Option(None, help="Warm-up steps (default steps/10)."),
    grad_clip: float | None = typer.Option(None, help="Gradient norm clip."),
    scaler: str | None = typer.Option(None, help="Scaler: none, minmax, zscore or robust."),
    clip: str | None = typer.Option(None, help="Clip scaled values to +-CLIP ('none': off)."),
    degradation: list[str] | None = typer.Option(
        None, help="Degradation setting key=value, a DegradationConfig field (repeatable)."),
    train_seed: int | None = typer.Option(None, help="Seed of the training run."),
    threshold: str = typer.Option("quantile", help="quantile or synthetic."),
    checkpoint_dir: Path | None = typer.Option(None, help="Write checkpoints here."),
    checkpoint_every: int = typer.Option(0, help="Checkpoint every N steps (0: never)."),
    registry: str | None = REGISTRY,
    start: str | None = START,
    end: str | None = END,
    test_start: str | None = TEST_START,
    test_end: str | None = TEST_END,
    devices: str | None = DEVICES,
    site: str | None = SITE,
    step_ms: int | None = STEP_MS,
) -> None:
    """Train a new model on normal data, threshold it, evaluate it, register it."""
    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.data.sources import check_series_length
    from ml.evaluation import ThresholdMethod
    from ml.pipeline import VALIDATION_FRACTION, fit_model, register
    from ml.registry import ModelRegistry
    from ml.run_config import (
        degradation_config,
        load_config_file,
        model_config,
        parse_assignments,
        train_config,
    )

    sections = (_guarded(lambda: load_config_file(config)) if config
                else {name: {} for name in ("model", "train", "degradation", "data")})
    data_section = dict(sections["data"])
    file = file or (Path(data_section["file"]) if "file" in data_section else None)
    test_file = test_file or (Path(data_section["test_file"]) if "test_file" in data_section
                              else None)
    contract = contract or data_section.get("contract")
    opts = _file_options({"time_column": time_column, "key_column": key_column,
                          "columns": columns, "map": map_, "label_column": label_column,
                          "intervals": intervals, "interval_units": interval_units,
                          "step_ms": step_ms}, data_section)
    settings = _settings(registry)
    lake = _LakeQuery(start, end, test_start, test_end, devices, site, step_ms)
    data = _guarded(lambda: _data(source, file, test_file, contract, channels, seed, meters,
                                  interval, hours, lake=lake, settings=settings,
                                  file_opts=opts))
    n_ch = data.description.n_channels
    model_opts = {"size": None if size is None else size.value, "n_layers": n_layers,
                  "d_model": d_model, "n_heads": n_heads, "d_ff": d_ff, "dropout": dropout,
                  "patch_size": patch_size, "n_patches": n_patches}
    train_opts = {"steps": steps, "lr": lr, "batch_size": batch_size,
                  "weight_decay": weight_decay, "warmup_steps": warmup_steps,
                  "grad_clip": grad_clip, "scaler": scaler, "clip": clip, "seed": train_seed}
    mc = _guarded(lambda: model_config(n_ch, Size.SMALL.value, sections["model"], model_opts))
    deg = _guarded(lambda: degradation_config(
        sections["degradation"], parse_assignments(degradation or [], "--degradation")))
    tc = _guarded(lambda: train_config(sections["train"], train_opts, deg, progress=True,
                                       checkpoint_dir=checkpoint_dir,
                                       checkpoint_every=checkpoint_every))
    _guarded(lambda: check_series_length(data.normal, mc.window, "training data",
                                         VALIDATION_FRACTION))
    outcome = _guarded(lambda: fit_model(data.normal, data.description, tc, model_config=mc,
                                         test=data.test,
                                         threshold_method=ThresholdMethod(threshold)))
    meta = register(ModelRegistry.from_settings(settings), outcome)
    _echo({"model_id": meta.model_id, "threshold": meta.threshold, "metrics": meta.metrics})


@app.command()
def transfer(
    parent_id: str = typer.Argument(..., help="Model to fine-tune."),
    source: SourceKind = SOURCE,
    file: Path | None = FILE,
    test_file: Path | None = TEST_FILE,
    contract: str | None = CONTRACT,
    channels: str | None = CHANNELS,
    time_column: str | None = TIME_COLUMN,
    key_column: str | None = KEY_COLUMN,
    columns: str | None = COLUMNS,
    map_: list[str] | None = MAP,
    label_column: str | None = LABEL_COLUMN,
    intervals: Path | None = INTERVALS,
    interval_units: str = INTERVAL_UNITS,
    seed: int = typer.Option(11, help="Simulator seed of the target site."),
    meters: int = typer.Option(400, help="Simulated fleet size of the target site."),
    interval: int = INTERVAL,
    hours: float = HOURS,
    steps: int = typer.Option(100, help="Fine-tuning steps (the target budget)."),
    lr: float = typer.Option(3e-4, help="Peak learning rate."),
    train_seed: int = typer.Option(0, help="Seed of the run."),
    threshold: str = typer.Option("quantile", help="quantile or synthetic."),
    registry: str | None = REGISTRY,
    start: str | None = START,
    end: str | None = END,
    test_start: str | None = TEST_START,
    test_end: str | None = TEST_END,
    devices: str | None = DEVICES,
    site: str | None = SITE,
    step_ms: int | None = STEP_MS,
) -> None:
    """Fine-tune a registered model on another site's data and register the result."""
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from ml.data.sources import GENERIC_CONTRACT

    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.evaluation import ThresholdMethod
    from ml.pipeline import fit_model, register
    from ml.registry import ModelRegistry
    from ml.training.train import TrainConfig

    settings = _settings(registry)
    reg = ModelRegistry.from_settings(settings)
    parent = _guarded(lambda: reg.load(parent_id))
    lake = _LakeQuery(start, end, test_start, test_end, devices, site, step_ms)
    parent_data = parent.metadata.data
    # a generic parent's files are read the way its own training file was
    opts = _file_options({"time_column": time_column, "key_column": key_column,
                          "columns": columns, "map": map_, "label_column": label_column,
                          "intervals": intervals, "interval_units": interval_units,
                          "step_ms": step_ms if source is SourceKind.FILE else None}, {})
    if parent_data.contract == GENERIC_CONTRACT and not _stored_is_matrix(parent_data):
        opts = opts.over(_FileOpts.of_model(parent_data, labels=True))
    data = _guarded(lambda: _data(source, file, test_file, contract, channels, seed, meters,
                                  interval, hours, lake=lake, settings=settings,
                                  file_opts=opts))
    tc = TrainConfig(steps=steps, lr=lr, seed=train_seed, warmup_steps=max(1, steps // 10),
                     progress=True)
    outcome = _guarded(lambda: fit_model(data.normal, data.description, tc,
                                         parent=parent.model, parent_id=parent_id,
                                         test=data.test,
                                         threshold_method=ThresholdMethod(threshold)))
    meta = register(reg, outcome)
    _echo({"model_id": meta.model_id, "parent_id": parent_id, "threshold": meta.threshold,
           "metrics": meta.metrics})


@app.command()
def evaluate(
    model_id: str = typer.Argument(..., help="Model to evaluate."),
    source: SourceKind = SOURCE,
    test_file: Path | None = TEST_FILE,
    contract: str | None = CONTRACT,
    time_column: str | None = TIME_COLUMN,
    key_column: str | None = KEY_COLUMN,
    columns: str | None = COLUMNS,
    map_: list[str] | None = MAP,
    label_column: str | None = LABEL_COLUMN,
    intervals: Path | None = INTERVALS,
    interval_units: str = INTERVAL_UNITS,
    step_ms: int | None = STEP_MS,
    seed: int = SEED,
    meters: int = METERS,
    interval: int = INTERVAL,
    label_tuned: bool = typer.Option(False, help="Also report the LABEL-TUNED best F1."),
    save: bool = typer.Option(True, help="Store the metrics with the model."),
    registry: str | None = REGISTRY,
    test_start: str | None = TEST_START,
    test_end: str | None = TEST_END,
    devices: str | None = DEVICES,
    site: str | None = SITE,
) -> None:
    """Evaluate a model's stored threshold on labelled test data."""
    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from ml.data.lake_source import LakeSource, parse_devices

    # lazy: see above
    from ml.data.sources import GENERIC_CONTRACT, contract_by_name

    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.evaluation import evaluate_model
    from ml.registry import ModelRegistry

    # lazy: see above
    from mock_devices.ml_source import SiteScenario

    settings = _settings(registry)
    reg = ModelRegistry.from_settings(settings)
    loaded = _guarded(lambda: reg.load(model_id))
    chans = loaded.metadata.data.channels
    if source is SourceKind.LAKE:
        if test_start is None or test_end is None:
            raise typer.BadParameter("--source lake needs --test-start and --test-end")
        data = loaded.metadata.data
        lake_src = LakeSource(settings, _ms(test_start, "--test-start"),
                              _ms(test_end, "--test-end"),
                              _guarded(lambda: contract_by_name(data.contract)),
                              parse_devices(devices), site, chans, data.step_ms, labels=True)
        test = _guarded(lake_src.load)
    elif source is SourceKind.SIM:
        test = SiteScenario(f"sim-seed{seed}", seed=seed, meters=meters,
                            ess_interval_s=interval, channels=chans).test_source().load()
    elif test_file is None:
        raise typer.BadParameter("--source file needs --test-file")
    else:
        opts = _file_options({"time_column": time_column, "key_column": key_column,
                              "columns": columns, "map": map_, "label_column": label_column,
                              "intervals": intervals, "interval_units": interval_units,
                              "step_ms": step_ms}, {})
        data = loaded.metadata.data
        if contract is not None and data.contract != GENERIC_CONTRACT \
                and contract != data.contract:
            raise typer.BadParameter(f"the model is for {data.contract}, not {contract}")
        path = test_file
        test = _guarded(lambda: _model_file_series(path, data, opts, labels=True))
    th = loaded.metadata.threshold if loaded.metadata.threshold is not None else 0.5
    ev = _guarded(lambda: evaluate_model(loaded.scorer(), test, th, "stored",
                                        label_tuned=label_tuned))
    if save:
        reg.update(model_id, metrics=ev)
    _echo({"model_id": model_id, **ev.to_dict()})


class ScoreSource(StrEnum):
    """What ``gridlake ml score`` scores."""

    LAKE = "lake"
    FILE = "file"


def _score_file(loaded: Any, path: Path, output: Path, opts: _FileOpts,
                threshold: float | None, max_gap: int) -> dict[str, Any]:
    """Score a file with a registered model; write per-step scores and flags to ``output``.

    Raises:
        SourceError: Bad file, wrong channels, unsupported output type, nothing scorable.

    """
    import numpy as np
    import pandas as pd

    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from ml.data.sources import SourceError

    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.detection import score_devices
    from ml.inference import InputError

    if output.suffix.lower() not in (".csv", ".parquet"):
        raise SourceError(f"{output}: the output must be .csv or .parquet")
    meta = loaded.metadata
    series = _model_file_series(path, meta.data, opts, labels=False)
    th = threshold if threshold is not None else meta.threshold
    if th is None:
        raise SourceError(f"model {meta.model_id} has no threshold: give --threshold")
    try:
        scored = score_devices(loaded.scorer(), series, float(th), meta.data.step_ms,
                               max_gap=max_gap)
    except InputError as err:
        raise SourceError(f"{path}: {err}") from err
    frames = []
    for s, d in zip(series, scored, strict=True):
        frame = pd.DataFrame({"device_id": d.device_id, "step": np.arange(len(s)),
                              "ts_ms": d.ts_ms, "score": d.scores, "anomaly": d.anomalous,
                              "imputed": d.imputed})
        if s.fault_types is not None:
            frame["label"] = s.fault_types
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    n_scored = int(np.isfinite(table["score"]).sum())
    if n_scored == 0:
        raise SourceError(f"{path}: no gap-free stretch of {loaded.model.config.window} "
                          "steps (the model window) to score")
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".csv":
        table.to_csv(output, index=False)
    else:
        table.to_parquet(output, index=False)
    return {"model_id": meta.model_id, "threshold": float(th), "output": str(output),
            "steps": len(table), "scored": n_scored,
            "anomalous": int(table["anomaly"].sum()),
            "devices": [d.device_id for d in scored]}


@app.command()
def score(
    model_id: str = typer.Argument(..., help="Registered model to score with."),
    source: ScoreSource = typer.Option(ScoreSource.LAKE, help="lake (default) or file."),
    file: Path | None = typer.Option(None, help="File to score (--source file)."),
    output: Path | None = typer.Option(None, help="Scores per step, .csv or .parquet "
                                                  "(--source file)."),
    time_column: str | None = TIME_COLUMN,
    key_column: str | None = KEY_COLUMN,
    columns: str | None = COLUMNS,
    map_: list[str] | None = MAP,
    step_ms: int | None = STEP_MS,
    start: str | None = typer.Option(None, help="First event time (ISO, UTC); default: "
                                                "end minus settings.ml.score_hours."),
    end: str | None = typer.Option(None, help="End of the range (exclusive); default: now."),
    devices: str | None = DEVICES,
    site: str | None = SITE,
    threshold: float | None = typer.Option(None, help="Override the model's threshold."),
    min_steps: int = typer.Option(1, min=1, help="Smallest anomalous steps of an interval."),
    merge_gap: int = typer.Option(0, min=0,
                                  help="Merge intervals separated by at most N steps."),
    max_gap: int = typer.Option(6, min=0,
                                help="Longest gap (steps) interpolated before scoring."),
    write: bool = typer.Option(True, help="Write the ADS tables and the Redis alarms "
                                          "(--no-write: score and report only)."),
    registry: str | None = REGISTRY,
) -> None:
    """Score recent lake series per device (scores, intervals, alarms), or a file.

    ``--source file --file X --output Y.csv`` scores a file instead and writes every
    step's score and anomaly flag (at the model's threshold) to ``Y`` (.csv or .parquet).
    """
    import time

    # lazy: torch, pandas, Spark and settings; `--help` needs none
    from lakehouse.time import HOUR_MS

    # lazy: see above
    from ml.data.lake_source import parse_devices

    settings = _settings(registry)
    if source is ScoreSource.FILE:
        if file is None or output is None:
            raise typer.BadParameter("--source file needs --file and --output")
        # lazy: torch (the optional ml extra), loaded by the commands that use it
        from ml.registry import ModelRegistry

        loaded = _guarded(lambda: ModelRegistry.from_settings(settings).load(model_id))
        opts = _file_options({"time_column": time_column, "key_column": key_column,
                              "columns": columns, "map": map_, "step_ms": step_ms}, {})
        src_file, out_file = file, output
        _echo(_guarded(lambda: _score_file(loaded, src_file, out_file, opts, threshold,
                                           max_gap)))
        return
    # Scoring a file needs neither Spark nor Redis (the platform extra); the lake does.
    # lazy: torch, Spark and Redis
    from ml.detection import IntervalRules
    from ml.lake_scoring import LakeScoreRequest, run_lake_scoring

    end_ms = _ms(end, "--end") if end else int(time.time() * 1000)
    start_ms = (_ms(start, "--start") if start
                else end_ms - int(settings.ml.score_hours * HOUR_MS))
    rules = IntervalRules(min_steps=min_steps, merge_gap=merge_gap)
    request = LakeScoreRequest(model_id, start_ms, end_ms, parse_devices(devices), site,
                               threshold, rules, max_gap, write)
    result = _guarded(lambda: run_lake_scoring(settings, request, progress=True))
    _echo(result.to_dict())


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default settings.ml.host)."),
    port: int | None = typer.Option(None, help="Port (default settings.ml.port)."),
    model: str | None = typer.Option(None, help="Model to activate at start."),
    registry: str | None = REGISTRY,
) -> None:
    """Run the scoring service (uvicorn)."""
    import uvicorn

    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.service.app import create_app

    settings = _settings(registry)
    uvicorn.run(create_app(settings, activate=model), host=host or settings.ml.host,
                port=port or settings.ml.port, log_level="info")


# ------------------------------------------------------------------------------ images
images_app = typer.Typer(name="images", no_args_is_help=True, add_completion=False,
                         help="Equipment image anomaly models: a ResNet-18 classifier and "
                              "an unsupervised autoencoder (train, evaluate, score the lake).")
app.add_typer(images_app)


class ImageKind(StrEnum):
    """Which image model."""

    CLASSIFIER = "classifier"
    AUTOENCODER = "autoencoder"

    @property
    def model_kind(self) -> str:
        """The registry's kind."""
        return f"image_{self.value}"


IMG_DATA = typer.Option(None, "--data", help="Folder with descriptions.csv/.parquet, or the "
                                             "description file itself.")
IMG_LAKE = typer.Option(False, "--lake", help="Read the images from the lake "
                                              "(ods_equipment_image + HDFS) instead.")
IMG_BATCH = typer.Option(None, "--batch", help="Lake: only this import batch (repeatable).")
IMG_SINCE = typer.Option(None, help="Lake: only images imported since (ISO, UTC).")


def _image_set(settings: GridLakeSettings, data: Path | None, lake: bool,
               batches: list[str] | None, since: str | None, size: int) -> Any:
    """Decode a folder's or the lake's images (progress bar; bad files reported)."""
    # lazy: torch, Pillow and (for the lake) Spark
    from infra.spark import spark_scope
    from ml.images.data import lake_index, load_folder, load_lake_rows
    from ml.progress import progress_bar

    if (data is None) == (not lake):
        raise typer.BadParameter("give either --data FOLDER_OR_DESCRIPTIONS or --lake")
    if data is not None:
        path = data

        def read_folder() -> Any:
            with progress_bar(True, _count_rows(path), "reading images") as advance:
                return load_folder(path, size, settings.images.max_pixels,
                                   settings.images.upload_workers, advance)

        out = _guarded(read_folder)
    else:
        since_ms = _ms(since, "--since") if since else None

        def read_lake() -> Any:
            with spark_scope(settings, "gridlake-ml-images") as spark:
                index = lake_index(spark, settings, batches or (), since_ms)
            with progress_bar(True, len(index), "reading images") as advance:
                return load_lake_rows(settings, index, size, advance,
                                      {"batches": batches or [], "since": since})

        out = _guarded(read_lake)
    for s in out.skipped[:20]:
        typer.echo(f"skipped {s.item}: {s.reason}", err=True)
    if len(out.skipped) > 20:
        typer.echo(f"... and {len(out.skipped) - 20} more skipped", err=True)
    if not len(out):
        typer.echo("error: no usable image", err=True)
        raise typer.Exit(2)
    return out


def _count_rows(path: Path) -> int:
    """Rows of a description file (for the progress bar; 0 when unknown)."""
    import pyarrow.parquet as pq  # heavy: only when a count is wanted

    desc = path
    if path.is_dir():
        desc = next((path / n for n in ("descriptions.csv", "descriptions.parquet")
                     if (path / n).is_file()), path)
    try:
        if desc.suffix.lower() == ".parquet":
            return int(pq.read_metadata(desc).num_rows)
        with desc.open("rb") as f:
            return max(0, sum(1 for _ in f) - 1)
    except OSError:
        return 0


@images_app.command("train")
def images_train(
    kind: ImageKind = typer.Option(..., help="classifier (ResNet-18, needs labels) or "
                                             "autoencoder (unsupervised, normal images)."),
    data: Path | None = IMG_DATA,
    lake: bool = IMG_LAKE,
    batch: list[str] | None = IMG_BATCH,
    since: str | None = IMG_SINCE,
    size: int = typer.Option(64, help="Input size in pixels (images are resized to it)."),
    width: int = typer.Option(16, help="Classifier: first-stage channels (64: standard "
                                       "ResNet-18). Autoencoder: first encoder channels."),
    small_input: bool = typer.Option(True, help="Classifier: 3×3 stem without max-pool "
                                                "(for inputs below ~128 px)."),
    pool: str = typer.Option("max", help="Classifier: global pooling before the head, "
                                         "max (small local defects) or avg (standard)."),
    depth: int = typer.Option(3, help="Autoencoder: down-sampling stages."),
    latent: int = typer.Option(16, help="Autoencoder: bottleneck channels."),
    top_k: float = typer.Option(0.02, help="Autoencoder: share of the anomaly map's largest "
                                           "values averaged into the score."),
    epochs: int = typer.Option(10, help="Passes over the training split."),
    batch_size: int = typer.Option(32, help="Images per step."),
    lr: float = typer.Option(2e-3, help="Peak learning rate."),
    defect_prob: float = typer.Option(0.5, help="Autoencoder: share of inputs with a "
                                                "synthetic defect."),
    seed: int = typer.Option(0, help="Seed of the 8:1:1 split, the weights and the "
                                     "augmentation."),
    registry: str | None = REGISTRY,
) -> None:
    """Train an image model on a split 8:1:1 set, threshold it on validation, register it."""
    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.images.training import ImageTrainConfig, fit_image_model, register_image_model
    from ml.models.image_autoencoder import ImageAutoencoderConfig
    from ml.models.resnet import ResNetConfig
    from ml.registry import ModelRegistry

    settings = _settings(registry)
    mc: Any = _guarded(lambda: ResNetConfig(image_size=size, width=width,
                                            small_input=small_input, pool=pool)
                       if kind is ImageKind.CLASSIFIER else
                       ImageAutoencoderConfig(image_size=size, base=width, depth=depth,
                                              latent=latent, top_k=top_k))
    tc = _guarded(lambda: ImageTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                                           seed=seed, defect_prob=defect_prob, progress=True))
    images = _image_set(settings, data, lake, batch, since, size)
    outcome = _guarded(lambda: fit_image_model(kind.model_kind, images, mc, tc))
    meta = _guarded(lambda: register_image_model(ModelRegistry.from_settings(settings),
                                                 outcome))
    _echo({"model_id": meta.model_id, "kind": meta.kind, "threshold": meta.threshold,
           "metrics": meta.metrics, "data": meta.data,
           "train_s": meta.extra.get("train_s"),
           "infer_images_per_s": meta.extra.get("infer_images_per_s")})


@images_app.command("evaluate")
def images_evaluate(
    model_id: str = typer.Argument(..., help="Image model to evaluate."),
    data: Path | None = IMG_DATA,
    lake: bool = IMG_LAKE,
    batch: list[str] | None = IMG_BATCH,
    since: str | None = IMG_SINCE,
    split: str = typer.Option("all", help="all: every labelled image; test: the test part "
                                          "of the model's seeded 8:1:1 split of this data."),
    threshold: float | None = typer.Option(None, help="Override the stored threshold."),
    save: bool = typer.Option(False, help="Store the metrics with the model."),
    registry: str | None = REGISTRY,
) -> None:
    """Accuracy, ROC AUC, PR AUC, F1 of an image model on labelled images."""
    import numpy as np

    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.images.data import split_indices
    from ml.images.inference import load_image_model
    from ml.images.training import evaluate_image_model
    from ml.registry import ModelRegistry

    if split not in ("all", "test"):
        raise typer.BadParameter("all or test", param_hint="--split")
    settings = _settings(registry)
    reg = ModelRegistry.from_settings(settings)
    loaded = _guarded(lambda: load_image_model(reg, model_id))
    images = _image_set(settings, data, lake, batch, since, loaded.model.image_size)
    if split == "test":
        labels = images.labels
        known = np.arange(len(labels)) if loaded.metadata.kind == "image_autoencoder" \
            else np.flatnonzero(labels >= 0)
        seed = int(loaded.metadata.data.get("split_seed", 0))
        _, _, te = split_indices(np.maximum(labels[known], 0), seed)
        images = images.subset(known[te])
    th = threshold if threshold is not None else loaded.threshold
    metrics = _guarded(lambda: evaluate_image_model(loaded.model, images, th))
    if save:
        reg.update_image(model_id, metrics=metrics.to_dict())
    _echo({"model_id": model_id, "kind": loaded.metadata.kind, "split": split,
           **metrics.to_dict()})


@images_app.command("score")
def images_score(
    model_id: str | None = typer.Option(None, help="Image model (default: the active one "
                                                   "of --kind)."),
    kind: ImageKind = typer.Option(ImageKind.CLASSIFIER, help="Kind of the active model to "
                                                              "use without --model-id."),
    batch: list[str] | None = IMG_BATCH,
    since: str | None = IMG_SINCE,
    rescore: bool = typer.Option(False, help="Score again images the model already scored."),
    write: bool = typer.Option(True, help="Write ads_image_anomaly (--no-write: report "
                                          "only)."),
    registry: str | None = REGISTRY,
) -> None:
    """Score lake images not yet scored by the model into ads_image_anomaly."""
    # lazy: torch and Spark
    from ml.images.scoring import ImageScoreRequest, run_image_scoring

    settings = _settings(registry)
    request = ImageScoreRequest(model_id, kind.model_kind, tuple(batch or ()),
                                _ms(since, "--since") if since else None, rescore, write)
    result = _guarded(lambda: run_image_scoring(settings, request, progress=True))
    _echo(result.to_dict())


@images_app.command("models")
def images_models(registry: str | None = REGISTRY) -> None:
    """Image models in the registry with kind, threshold and test metrics."""
    # lazy: torch (the optional ml extra)
    from ml.registry import ModelRegistry

    metas = _guarded(lambda: ModelRegistry.from_settings(_settings(registry)).image_models())
    _echo({"models": [{"model_id": m.model_id, "kind": m.kind, "created": m.created,
                       "threshold": m.threshold, "metrics": m.metrics,
                       "data": m.data} for m in metas]})
