"""Ablation of AnomalyBERT's data side: old defaults vs faithful defaults vs each scaler.

Every arm trains the small configuration (:meth:`AnomalyBertConfig.small`) with the same
budget on the same data, thresholds it label-free (the 99th percentile of the scores of
the held-out tail of the normal training data, ``quantile:0.99``) and is evaluated on a
labelled test period. Arms:

* ``old_defaults`` - GridLake's defaults before: ``DegradationConfig.gridlake_v1()`` and
  z-score without the near-constant guard (``scale_floor=0``);
* ``v1_minmax`` - the old degradations with min-max scaling and the guard (separates the
  degradation change from the scaling change);
* ``faithful_<scaler>`` - the published degradations with each scaler (none, min-max,
  z-score, robust z-score), with the guard.

Data sets (all made here, labels known exactly):

* ``synthetic`` - :class:`ml.data.synthetic.SyntheticSource` (6 correlated channels, a
  near-constant set point, six anomaly kinds);
* ``synthetic_jitter`` - the same, but the set point (50 ± 1e-4 in training) jitters by
  ± 1e-3 in the test period: the case that broke the z-score before the near-constant
  guard;
* ``ess`` - the simulator's site A (9 BMS channels at 10 s; thermal runaway and cell
  imbalance faults on the test day);
* ``transformer`` - the simulator's transformer telemetry at 1 min (overload and
  overheating faults on the test day);
* ``uci`` - the real UCI household power series in ``../shared/data`` (7 channels at
  1 min): the first 60 % for training, the rest with injected anomalies
  (:func:`ml.data.synthetic.inject_anomalies`).

Figures per data set and arm: median and range over the seeds of AUC-PR, AUC-ROC, F1
without point adjustment at the label-free threshold, point-adjusted F1, (P+R)/2 and the
share of test steps flagged. ``GRIDLAKE_BENCH_QUICK=1`` runs one seed and fewer steps;
``GRIDLAKE_BENCH_ML_DATASETS=synthetic,ess`` runs a subset of the data sets.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lakehouse.contracts.messages import TRANSFORMER_TELEMETRY
from lakehouse.time import parse_time_ms
from ml.data.degradation import DegradationConfig
from ml.data.scaling import NEAR_CONSTANT, ScalerKind
from ml.data.sources import DataDescription, Series
from ml.data.synthetic import SyntheticSource, inject_anomalies
from ml.evaluation import Evaluation
from ml.models.anomalybert import AnomalyBertConfig
from ml.pipeline import fit_model
from ml.training.train import TrainConfig
from mock_devices.config import FleetConfig
from mock_devices.faults import FaultRequest
from mock_devices.ml_source import SITE_A, SimulatorSource

logger = logging.getLogger(__name__)

#: The real UCI series in the ``shared/`` folder beside the repository (not shipped with it).
UCI_FILE = (Path(__file__).resolve().parents[2].parent / "shared" / "data"
            / "uci_household_power_consumption_sample.txt")
QUANTILE = 0.99
METRICS = ("auc_pr", "auc_roc", "f1", "pa_f1", "mean_pr", "flagged_ratio")


@dataclass(frozen=True)
class Arm:
    """One training recipe of the ablation."""

    name: str
    degradation: DegradationConfig
    scaler: ScalerKind
    scale_floor: float = NEAR_CONSTANT


def arms() -> list[Arm]:
    """The recipes compared (module docstring)."""
    old = DegradationConfig.gridlake_v1()
    faithful = DegradationConfig()
    return [Arm("old_defaults", old, ScalerKind.ZSCORE, scale_floor=0.0),
            Arm("v1_minmax", old, ScalerKind.MINMAX),
            *(Arm(f"faithful_{k.value}", faithful, k) for k in ScalerKind)]


@dataclass
class DataSet:
    """Normal training series, labelled test series and their description."""

    normal: list[Series]
    test: list[Series]
    description: DataDescription


def synthetic_data() -> DataSet:
    """The synthetic multivariate set."""
    src = SyntheticSource(seed=0)
    return DataSet(src.load(), src.load_test(), src.description())


def synthetic_jitter_data() -> DataSet:
    """The synthetic set whose set point jitters a little more in the test period."""
    src = SyntheticSource(seed=0, setpoint_test_noise=1e-3)
    return DataSet(src.load(), src.load_test(), src.description())


def ess_data() -> DataSet:
    """The simulator's ESS site A (normal day, labelled test day)."""
    src = SITE_A.normal_source()
    return DataSet(src.load(), SITE_A.test_source().load(), src.description())


def transformer_data() -> DataSet:
    """The simulator's transformers: three normal days, a test day with faults."""
    fleet = FleetConfig(meters=200, seed=7)
    day = "2024-06-04"
    normal_src = SimulatorSource(TRANSFORMER_TELEMETRY, fleet, "2024-06-01", 72.0,
                                 site="sim-transformers")
    normal = normal_src.load()
    devices = sorted(s.device_id for s in normal)

    def at(kind: str, dev: str, hhmm: str) -> FaultRequest:
        return FaultRequest(kind, dev, parse_time_ms(f"{day}T{hhmm}"), None)

    faults = (*(at("transformer_overload", dev, "03:00") for dev in devices[:2]),
              *(at("transformer_overheating", dev, "13:00") for dev in devices[2:4]))
    test = SimulatorSource(TRANSFORMER_TELEMETRY, fleet, day, 24.0, faults=faults,
                           site="sim-transformers").load()
    return DataSet(normal, test, normal_src.description())


def uci_data(path: Path = UCI_FILE, seed: int = 0) -> DataSet:
    """The UCI household series: 60 % normal training, 40 % test with injected anomalies.

    Raises:
        FileNotFoundError: The data file is missing.

    """
    frame = pd.read_csv(path, sep=";", na_values=["?"], low_memory=False)
    ts = pd.to_datetime(frame["Date"] + " " + frame["Time"], format="%d/%m/%Y %H:%M:%S",
                        utc=True)
    values = frame.drop(columns=["Date", "Time"]).to_numpy(dtype=np.float64)
    ts_ms = (ts.astype("int64") // 1_000_000).to_numpy()
    cut = int(len(values) * 0.6)
    rng = np.random.default_rng(seed)
    test_values, labels = inject_anomalies(values[cut:], rng, n_events=25)
    channels = tuple(c for c in frame.columns if c not in ("Date", "Time"))
    desc = DataSet(
        [Series("uci-household", ts_ms[:cut], values[:cut])],
        [Series("uci-household", ts_ms[cut:], test_values, labels)],
        DataDescription(source="file", contract="generic", channels=channels,
                        units=("",) * len(channels), step_ms=60_000, site="uci-household"),
    )
    return desc


DATASETS: dict[str, Callable[[], DataSet]] = {
    "synthetic": synthetic_data, "synthetic_jitter": synthetic_jitter_data, "ess": ess_data,
    "transformer": transformer_data, "uci": uci_data}


def run_arm(data: DataSet, arm: Arm, steps: int, seed: int) -> Evaluation:
    """Train one arm with one seed and evaluate it on the test series."""
    n_ch = data.description.n_channels
    cfg = TrainConfig(steps=steps, lr=1e-3, warmup_steps=max(1, steps // 10), seed=seed,
                      log_every=0, degradation=arm.degradation, scaler=arm.scaler,
                      scale_floor=arm.scale_floor)
    outcome = fit_model(data.normal, data.description, cfg,
                        model_config=AnomalyBertConfig.small(n_ch), test=data.test,
                        quantile=QUANTILE)
    assert outcome.evaluation is not None
    return outcome.evaluation


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4)}


def run_benchmark(steps: int | None = None, seeds: int | None = None,
                  datasets: list[str] | None = None, threads: int = 1) -> dict[str, Any]:
    """Run the ablation; returns ``{dataset: {arm: {metric: {median, min, max}}}}`` and more.

    Args:
        steps: Training steps per run (default 600; 200 when quick).
        seeds: Training seeds per arm (default 3; 1 when quick).
        datasets: Subset of :data:`DATASETS` (default all).
        threads: Torch CPU threads (one is fastest on a busy 2-core machine).

    """
    quick = os.environ.get("GRIDLAKE_BENCH_QUICK") == "1"
    steps = steps or (200 if quick else 600)
    seeds = seeds or (1 if quick else 3)
    names = datasets or os.environ.get("GRIDLAKE_BENCH_ML_DATASETS", "").split(",")
    names = [n for n in names if n] or list(DATASETS)
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise ValueError(f"unknown data sets {unknown}; known: {list(DATASETS)}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"steps": steps, "seeds": seeds, "threshold": f"quantile:{QUANTILE}",
                           "model": "small"}
    try:
        for name in names:
            t0 = time.perf_counter()
            data = DATASETS[name]()
            ratio = float(np.mean(np.concatenate([s.labels for s in data.test
                                                  if s.labels is not None])))
            per_arm: dict[str, Any] = {}
            for arm in arms():
                evs = [run_arm(data, arm, steps, seed) for seed in range(seeds)]
                per_arm[arm.name] = {m: _summary([float(getattr(e, m)) for e in evs])
                                     for m in METRICS}
                logger.info("%s %s: AUC-PR %s", name, arm.name, per_arm[arm.name]["auc_pr"])
            out[name] = {"anomaly_ratio": round(ratio, 4), "channels": data.description.n_channels,
                         "seconds": round(time.perf_counter() - t0, 1), "arms": per_arm}
    finally:
        torch.set_num_threads(before)
    return out


def flat(results: dict[str, Any]) -> dict[str, Any]:
    """One figure per key (``<data set>.<arm>.<metric>``: ``median [min, max]``)."""
    out: dict[str, Any] = {k: v for k, v in results.items() if not isinstance(v, dict)}
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        out[f"{name}.anomaly_ratio"] = r["anomaly_ratio"]
        out[f"{name}.seconds"] = r["seconds"]
        for arm, metrics in r["arms"].items():
            for m, v in metrics.items():
                out[f"{name}.{arm}.{m}"] = f"{v['median']} [{v['min']}, {v['max']}]"
    return out


def markdown(results: dict[str, Any]) -> str:
    """The ablation as a markdown table (median [min–max] over the seeds)."""
    lines = ["| data set | arm | AUC-PR | AUC-ROC | F1 | PA-F1 | (P+R)/2 | flagged |",
             "|---|---|---|---|---|---|---|---|"]
    for name in DATASETS:
        if name not in results:
            continue
        for arm, m in results[name]["arms"].items():
            cells = [f"{m[k]['median']:.3f} [{m[k]['min']:.3f}–{m[k]['max']:.3f}]"
                     for k in METRICS]
            lines.append(f"| {name} (anomalies {results[name]['anomaly_ratio']:.1%}) | {arm} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)
