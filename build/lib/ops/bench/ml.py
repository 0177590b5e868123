"""ML benchmark: speed of AnomalyBERT on this CPU and detection quality on the seeded sites.

Figures (one flat dict, for the ``gridlake bench`` harness):

* ``default_*`` - the published configuration (6 layers, width 512, 512 patches of 90
  steps, 9 ESS channels): training steps/s at batch 16 (only ``default_steps`` steps
  after one untimed warm-up step, random windows) and scoring throughput in time
  steps/s (windows every quarter window, batch 16);
* ``small_*`` - :meth:`AnomalyBertConfig.small` (2 layers, width 64, 64 patches of 8
  steps): training steps/s over the benchmark run and scoring throughput;
* ``f1``, ``pa_f1``, ``auc_pr``, ``mean_pr``, ``anomaly_ratio``, recall per fault type -
  the small model trained ``train_steps`` steps on site A's normal day and evaluated on
  its labelled test day (threshold: 99.5 % quantile of validation scores);
  ``oracle_f1`` is LABEL-TUNED (upper bound only);
* ``transfer_*`` - site B (other seed, larger banks), fine-tuned from the site-A model
  vs trained from scratch with the same ``transfer_steps`` budget, with all 9 channels
  and with 6 channels (embedding re-initialised): AUC-PR and F1 of both and the gain.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from infra.settings import GridLakeSettings
from ml.data.degradation import DegradationConfig
from ml.data.scaling import Scaler
from ml.data.sources import Series
from ml.inference import Scorer
from ml.models.anomalybert import AnomalyBert, AnomalyBertConfig
from ml.pipeline import fit_model
from ml.training.train import TrainConfig, fit
from mock_devices.ml_source import SITE_A, SITE_B

logger = logging.getLogger(__name__)

SUBSET = ("dc_voltage_v", "dc_current_a", "soc_pct", "max_cell_temp_c", "min_cell_temp_c",
          "cell_voltage_gap_mv")


def _speed(config: AnomalyBertConfig, train_steps: int, score_windows: int,
           seed: int) -> dict[str, float]:
    """Training steps/s and scoring time steps/s of a fresh model on random data."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = AnomalyBert(config)
    w, c = config.window, config.n_channels
    series = rng.standard_normal((w + (score_windows - 1) * (w // 4), c)).astype(np.float32)
    segments = [series]
    warm = TrainConfig(steps=1, batch_size=16, warmup_steps=1, seed=seed, log_every=0,
                       degradation=DegradationConfig())
    fit(model, segments, warm)
    timed = TrainConfig(steps=train_steps, batch_size=16, warmup_steps=1, seed=seed,
                        log_every=0)
    _, seconds = fit(model, segments, timed)
    scaler = Scaler.identity(c)
    scorer = Scorer(model, scaler, batch_size=16)
    t0 = time.perf_counter()
    scorer.score_scaled([series])
    score_s = time.perf_counter() - t0
    return {"train_steps_per_s": round(train_steps / seconds, 4),
            "score_steps_per_s": round(len(series) / score_s, 1),
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3)}


def _select(series: list[Series], idx: list[int]) -> list[Series]:
    return [Series(s.device_id, s.ts_ms, s.values[:, idx], s.fault_types) for s in series]


def run_benchmark(
    settings: GridLakeSettings,
    train_steps: int = 1000,
    transfer_steps: int = 50,
    default_steps: int = 2,
    seed: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    """Measure speed and detection quality; see the module docstring.

    Args:
        settings: GridLake settings (the benchmark needs no service).
        train_steps: Training steps of the small model on site A.
        transfer_steps: Target budget (steps) on site B, for transfer and scratch alike.
        default_steps: Timed training steps of the published configuration.
        seed: Training seed.
        threads: Torch CPU threads during the benchmark (restored afterwards). One
            thread is the default: on a small shared machine, more threads than idle
            cores make every step many times slower.

    """
    del settings  # no service or storage is involved
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(train_steps, transfer_steps, default_steps, seed)
    finally:
        torch.set_num_threads(before)


def _run(train_steps: int, transfer_steps: int, default_steps: int,
         seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    n_ch = 9
    for name, cfg, steps, windows in (
        ("default", AnomalyBertConfig(n_channels=n_ch), default_steps, 5),
        ("small", AnomalyBertConfig.small(n_ch), 20, 64),
    ):
        logger.info("timing the %s configuration", name)
        out.update({f"{name}_{k}": v for k, v in _speed(cfg, steps, windows, seed).items()})
        out[f"{name}_window_steps"] = cfg.window

    t0 = time.perf_counter()
    src_a, src_b = SITE_A.normal_source(), SITE_B.normal_source()
    normal_a, test_a = src_a.load(), SITE_A.test_source().load()
    normal_b, test_b = src_b.load(), SITE_B.test_source().load()
    out["simulate_s"] = round(time.perf_counter() - t0, 1)

    small = AnomalyBertConfig.small(n_ch)
    lr_cfg = TrainConfig(steps=train_steps, lr=1e-3, warmup_steps=max(1, train_steps // 10),
                         seed=seed, log_every=100)
    source = fit_model(normal_a, src_a.description(), lr_cfg, model_config=small, test=test_a,
                       label_tuned=True)
    ev = source.evaluation
    assert ev is not None
    out.update({
        "small_train_steps": train_steps,
        "small_train_steps_per_s_run": round(source.result.steps_per_s, 2),
        "f1": round(ev.f1, 4), "pa_f1": round(ev.pa_f1, 4), "auc_pr": round(ev.auc_pr, 4),
        "precision": round(ev.precision, 4), "recall": round(ev.recall, 4),
        "mean_pr": round(ev.mean_pr, 4), "anomaly_ratio": round(ev.anomaly_ratio, 4),
        "threshold": round(ev.threshold, 5),
        "oracle_f1_label_tuned": None if ev.oracle_f1 is None else round(ev.oracle_f1, 4),
        **{f"recall_{k}": round(v, 4) for k, v in ev.recall_by_type.items()},
        **{f"event_recall_{k}": round(v, 4) for k, v in ev.event_recall_by_type.items()},
    })

    budget = TrainConfig(steps=transfer_steps, lr=3e-4,
                         warmup_steps=max(1, transfer_steps // 10), seed=seed + 100,
                         log_every=0)
    all_ch = src_b.description().channels
    for label, channels in (("same_channels", all_ch), ("fewer_channels", SUBSET)):
        idx = [all_ch.index(c) for c in channels]
        nb, tb = _select(normal_b, idx), _select(test_b, idx)
        tuned = fit_model(nb, src_b.description(), budget, parent=source.model, test=tb)
        scratch = fit_model(nb, src_b.description(), budget,
                            model_config=AnomalyBertConfig.small(len(idx)), test=tb)
        assert tuned.evaluation is not None and scratch.evaluation is not None
        out.update({
            f"transfer_{label}_auc_pr": round(tuned.evaluation.auc_pr, 4),
            f"scratch_{label}_auc_pr": round(scratch.evaluation.auc_pr, 4),
            f"transfer_{label}_f1": round(tuned.evaluation.f1, 4),
            f"scratch_{label}_f1": round(scratch.evaluation.f1, 4),
            f"transfer_{label}_gain_auc_pr": round(
                tuned.evaluation.auc_pr - scratch.evaluation.auc_pr, 4),
        })
    out["transfer_steps"] = transfer_steps
    return out
