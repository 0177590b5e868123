"""``gridlake ml``: train, transfer, evaluate and serve AnomalyBERT models.

Data comes from the seeded simulator (``--source sim``: a normal period for training
and a labelled test period with the benchmark's fault plan) or from files
(``--source file --file normal.parquet [--test-file labelled.parquet]``, see
:class:`ml.data.sources.FileSource`). Models go to the registry ``settings.ml``
describes (``--registry local`` overrides it).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from infra.settings import GridLakeSettings, load_settings

logger = logging.getLogger(__name__)

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


class Size(StrEnum):
    """Network size preset."""

    SMALL = "small"
    DEFAULT = "default"


@dataclass
class _Data:
    normal: list[Any]
    test: list[Any] | None
    description: Any


def _settings(registry: str | None) -> GridLakeSettings:
    settings = load_settings()
    if registry:
        settings = settings.model_copy(
            update={"ml": settings.ml.model_copy(update={"registry": registry})})
    return settings


def _data(source: SourceKind, file: Path | None, test_file: Path | None, contract: str,
          channels: str | None, seed: int, meters: int, interval: int, hours: float,
          with_test: bool = True) -> _Data:
    from ml.data.sources import FileSource, contract_by_name
    from ml.pipeline import SiteScenario

    chans = tuple(c.strip() for c in channels.split(",") if c.strip()) if channels else None
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


def _echo(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


SOURCE = typer.Option(SourceKind.SIM, help="sim (seeded simulator) or file.")
FILE = typer.Option(None, help="Normal (training) series file, .parquet or .csv.")
TEST_FILE = typer.Option(None, help="Labelled test series file (fault_type column).")
CONTRACT = typer.Option("ess_bms", help="Message contract of the channels.")
CHANNELS = typer.Option(None, help="Comma-separated channel subset (default: all numeric).")
SEED = typer.Option(7, help="Simulator seed (the site).")
METERS = typer.Option(50, help="Simulated fleet size (sets ESS ratings).")
INTERVAL = typer.Option(10, help="Simulated BMS interval in seconds.")
HOURS = typer.Option(24.0, help="Hours of normal simulated data.")
REGISTRY = typer.Option(None, help="Override settings.ml.registry: local or hdfs.")


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
) -> None:
    """Train a new model on normal data, threshold it, evaluate it, register it."""
    from ml.evaluation import ThresholdMethod
    from ml.models.anomalybert import AnomalyBertConfig
    from ml.pipeline import fit_model, register
    from ml.registry import ModelRegistry
    from ml.training.train import TrainConfig

    data = _data(source, file, test_file, contract, channels, seed, meters, interval, hours)
    n_ch = data.description.n_channels
    overrides = {k: v for k, v in (("patch_size", patch_size), ("n_patches", n_patches))
                 if v is not None}
    mc = (AnomalyBertConfig.small(n_ch, **overrides) if size is Size.SMALL
          else AnomalyBertConfig(n_channels=n_ch, **overrides))
    tc = TrainConfig(steps=steps, lr=lr, batch_size=batch_size, seed=train_seed,
                     warmup_steps=max(1, steps // 10), progress=True,
                     checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
    outcome = fit_model(data.normal, data.description, tc, model_config=mc, test=data.test,
                        threshold_method=ThresholdMethod(threshold))
    meta = register(ModelRegistry.from_settings(_settings(registry)), outcome)
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
) -> None:
    """Fine-tune a registered model on another site's data and register the result."""
    from ml.evaluation import ThresholdMethod
    from ml.pipeline import fit_model, register
    from ml.registry import ModelRegistry
    from ml.training.train import TrainConfig

    reg = ModelRegistry.from_settings(_settings(registry))
    parent = reg.load(parent_id)
    data = _data(source, file, test_file, contract, channels, seed, meters, interval, hours)
    tc = TrainConfig(steps=steps, lr=lr, seed=train_seed, warmup_steps=max(1, steps // 10),
                     progress=True)
    outcome = fit_model(data.normal, data.description, tc, parent=parent.model,
                        parent_id=parent_id, test=data.test,
                        threshold_method=ThresholdMethod(threshold))
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
) -> None:
    """Evaluate a model's stored threshold on labelled test data."""
    from ml.data.sources import FileSource, contract_by_name
    from ml.evaluation import evaluate_model
    from ml.pipeline import SiteScenario
    from ml.registry import ModelRegistry

    reg = ModelRegistry.from_settings(_settings(registry))
    loaded = reg.load(model_id)
    chans = loaded.metadata.data.channels
    if source is SourceKind.SIM:
        test = SiteScenario(f"sim-seed{seed}", seed=seed, meters=meters,
                            ess_interval_s=interval, channels=chans).test_source().load()
    elif test_file is None:
        raise typer.BadParameter("--source file needs --test-file")
    else:
        test = FileSource(test_file, contract_by_name(contract), chans).load()
    th = loaded.metadata.threshold if loaded.metadata.threshold is not None else 0.5
    ev = evaluate_model(loaded.scorer(), test, th, "stored", label_tuned=label_tuned)
    if save:
        reg.update(model_id, metrics=ev)
    _echo({"model_id": model_id, **ev.to_dict()})


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default settings.ml.host)."),
    port: int | None = typer.Option(None, help="Port (default settings.ml.port)."),
    model: str | None = typer.Option(None, help="Model to activate at start."),
    registry: str | None = REGISTRY,
) -> None:
    """Run the scoring service (uvicorn)."""
    import uvicorn

    from ml.service.app import create_app

    settings = _settings(registry)
    uvicorn.run(create_app(settings, activate=model), host=host or settings.ml.host,
                port=port or settings.ml.port, log_level="info")
