"""``gridlake ml``: train, transfer, evaluate and serve AnomalyBERT models.

Data comes from the seeded simulator (``--source sim``: a normal period for training
and a labelled test period with the benchmark's fault plan), from files
(``--source file --file normal.parquet [--test-file labelled.parquet]``, see
:class:`ml.data.sources.FileSource`) or from the lake (``--source lake --start … --end …
[--test-start … --test-end …]``: the DWD table of ``--contract``, see
:class:`ml.data.lake_source.LakeSource`). Models go to the registry ``settings.ml`` describes
(``--registry local`` overrides it). ``gridlake ml score`` scores a range of the lake with
a registered model and writes scores, intervals and alarms (:mod:`ml.lake_scoring`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer

from infra.lake import LakeError
from infra.settings import GridLakeSettings, load_settings
from lakehouse.time import HOUR_MS, parse_time_ms
from ml.data.lake_source import LakeSource, check_disjoint, lake_session, parse_devices
from ml.data.sources import FileSource, contract_by_name
from mock_devices.ml_source import SiteScenario

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
    try:
        return parse_time_ms(text)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint=option) from None


def _lake_data(settings: GridLakeSettings, q: _LakeQuery, contract: str,
               chans: tuple[str, ...] | None, with_test: bool) -> _Data:
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
    with lake_session(settings, "gridlake-ml-train") as spark:
        src = LakeSource(settings, *train_range, c, devices, q.site, chans, q.step_ms,
                         spark=spark)
        normal = src.load()
        test = None
        if test_range is not None:
            # the test grid is the training grid, whatever spacing the test rows show
            test = LakeSource(settings, *test_range, c, devices, q.site, chans,
                              src.description().step_ms, labels=True, spark=spark).load()
        return _Data(normal, test, src.description())


def _settings(registry: str | None) -> GridLakeSettings:
    settings = load_settings()
    if registry:
        settings = settings.model_copy(
            update={"ml": settings.ml.model_copy(update={"registry": registry})})
    return settings


def _data(source: SourceKind, file: Path | None, test_file: Path | None, contract: str,
          channels: str | None, seed: int, meters: int, interval: int, hours: float,
          with_test: bool = True, lake: _LakeQuery | None = None,
          settings: GridLakeSettings | None = None) -> _Data:
    chans = tuple(c.strip() for c in channels.split(",") if c.strip()) if channels else None
    if source is SourceKind.LAKE:
        if lake is None or settings is None:
            raise typer.BadParameter("--source lake needs the lake options")
        return _lake_data(settings, lake, contract, chans, with_test)
    if source is SourceKind.SIM:
        if contract != "ess_bms":
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
    c = contract_by_name(contract)
    src = FileSource(file, c, chans)
    test_series = FileSource(test_file, c, chans).load() if test_file else None
    return _Data(src.load(), test_series, src.description())


def _guarded(make: Callable[[], _T]) -> _T:
    """Run ``make``; bad data or a lake failure ends the command with a one-line error.

    Data problems (no readings, too short a series, unknown channel or device, a lake that
    cannot be read) are all ``ValueError`` subclasses here, registry problems
    ``RegistryError``, HDFS not answering ``LakeError``.
    """
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
CONTRACT = typer.Option("ess_bms", help="Message contract of the channels.")
CHANNELS = typer.Option(None, help="Comma-separated channel subset (default: all numeric).")
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
STEP_MS = typer.Option(None, help="Lake: grid spacing in ms (default: inferred).")


@app.command()
def train(
    source: SourceKind = SOURCE,
    file: Path | None = FILE,
    test_file: Path | None = TEST_FILE,
    contract: str = CONTRACT,
    channels: str | None = CHANNELS,
    seed: int = SEED,
    meters: int = METERS,
    interval: int = INTERVAL,
    hours: float = HOURS,
    size: Size = typer.Option(Size.SMALL, help="small (CPU) or default (published)."),
    patch_size: int | None = typer.Option(None, help="Override the patch size."),
    n_patches: int | None = typer.Option(None, help="Override the patches per window."),
    steps: int = typer.Option(300, help="Training steps."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (published: 1e-4)."),
    batch_size: int = typer.Option(16, help="Windows per step."),
    train_seed: int = typer.Option(0, help="Seed of the training run."),
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
    from ml.evaluation import ThresholdMethod
    from ml.models.anomalybert import AnomalyBertConfig
    from ml.pipeline import fit_model, register
    from ml.registry import ModelRegistry
    from ml.training.train import TrainConfig

    settings = _settings(registry)
    lake = _LakeQuery(start, end, test_start, test_end, devices, site, step_ms)
    data = _guarded(lambda: _data(source, file, test_file, contract, channels, seed, meters,
                                  interval, hours, lake=lake, settings=settings))
    n_ch = data.description.n_channels
    overrides = {k: v for k, v in (("patch_size", patch_size), ("n_patches", n_patches))
                 if v is not None}
    mc = (AnomalyBertConfig.small(n_ch, **overrides) if size is Size.SMALL
          else AnomalyBertConfig(n_channels=n_ch, **overrides))
    tc = TrainConfig(steps=steps, lr=lr, batch_size=batch_size, seed=train_seed,
                     warmup_steps=max(1, steps // 10), progress=True,
                     checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
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
    contract: str = CONTRACT,
    channels: str | None = CHANNELS,
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
    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.evaluation import ThresholdMethod
    from ml.pipeline import fit_model, register
    from ml.registry import ModelRegistry
    from ml.training.train import TrainConfig

    settings = _settings(registry)
    reg = ModelRegistry.from_settings(settings)
    parent = _guarded(lambda: reg.load(parent_id))
    lake = _LakeQuery(start, end, test_start, test_end, devices, site, step_ms)
    data = _guarded(lambda: _data(source, file, test_file, contract, channels, seed, meters,
                                  interval, hours, lake=lake, settings=settings))
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
    contract: str = CONTRACT,
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
    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.evaluation import evaluate_model
    from ml.registry import ModelRegistry

    settings = _settings(registry)
    reg = ModelRegistry.from_settings(settings)
    loaded = _guarded(lambda: reg.load(model_id))
    chans = loaded.metadata.data.channels
    if source is SourceKind.LAKE:
        if test_start is None or test_end is None:
            raise typer.BadParameter("--source lake needs --test-start and --test-end")
        data = loaded.metadata.data
        lake_src = LakeSource(settings, _ms(test_start, "--test-start"),
                              _ms(test_end, "--test-end"), contract_by_name(data.contract),
                              parse_devices(devices), site, chans, data.step_ms, labels=True)
        test = _guarded(lake_src.load)
    elif source is SourceKind.SIM:
        test = SiteScenario(f"sim-seed{seed}", seed=seed, meters=meters,
                            ess_interval_s=interval, channels=chans).test_source().load()
    elif test_file is None:
        raise typer.BadParameter("--source file needs --test-file")
    else:
        test = FileSource(test_file, contract_by_name(contract), chans).load()
    th = loaded.metadata.threshold if loaded.metadata.threshold is not None else 0.5
    ev = _guarded(lambda: evaluate_model(loaded.scorer(), test, th, "stored",
                                        label_tuned=label_tuned))
    if save:
        reg.update(model_id, metrics=ev)
    _echo({"model_id": model_id, **ev.to_dict()})


@app.command()
def score(
    model_id: str = typer.Argument(..., help="Registered model to score with."),
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
    """Score recent lake series per device; write scores, intervals and alarms."""
    import time

    # lazy: torch (the optional ml extra), loaded by the commands that use it
    from ml.detection import IntervalRules
    from ml.lake_scoring import LakeScoreRequest, run_lake_scoring

    settings = _settings(registry)
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
