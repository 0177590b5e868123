from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.data.degradation import DegradationConfig
from ml.data.sources import Series
from ml.pipeline import FitOutcome
from ml.training.train import TrainConfig, lr_lambda, sample_batch, train
from tests.ml.ml_helpers import SiteData, tiny_config

torch.set_num_threads(1)


def test_small_model_detects_injected_faults_far_better_than_chance(
    trained_a: FitOutcome,
) -> None:
    """Measured (seed 0, 1 thread): F1 0.78, PA-F1 0.82, AUC-PR 0.71 at ratio 0.156.

    Chance: AUC-PR = anomaly ratio (0.156); F1 of flagging everything = 0.27.
    """
    ev = trained_a.evaluation
    assert ev is not None
    assert 0.1 < ev.anomaly_ratio < 0.2
    assert ev.f1 >= 0.6
    assert ev.auc_pr >= 0.5 and ev.auc_pr >= 3 * ev.anomaly_ratio
    assert ev.pa_f1 >= ev.f1 * 0.95
    assert ev.threshold_method == "quantile:0.995"
    assert set(ev.recall_by_type) == {"ess_cell_imbalance", "ess_thermal_runaway"}
    assert all(r >= 0.6 for r in ev.recall_by_type.values())
    assert all(r >= 0.5 for r in ev.event_recall_by_type.values())
    assert ev.oracle_f1 is not None and ev.oracle_f1 >= ev.f1 - 1e-9
    assert trained_a.result.final_loss < trained_a.result.losses[0]


def test_lr_schedule_warms_up_then_decays() -> None:
    f = lr_lambda(10, 100, 0.01)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(100) == pytest.approx(0.01)
    assert all(f(k) >= f(k + 1) for k in range(10, 100))


def test_batches_have_window_shapes_and_masks(site_a: SiteData) -> None:
    rng = np.random.default_rng(0)
    segs = [np.asarray(s.values[:1000], dtype=np.float32) for s in site_a.normal]
    x, y = sample_batch(segs, 256, 16, rng, DegradationConfig(), 16)
    assert x.shape == (16, 256, 9) and y.shape == (16, 256)
    assert set(np.unique(y)) <= {0.0, 1.0} and y.any()


def _short(site_a: SiteData) -> list[Series]:
    return [s.slice(0, 2000) for s in site_a.normal]


def test_training_is_seeded_and_resumable(site_a: SiteData, tmp_path: Path) -> None:
    cfg = TrainConfig(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, seed=3, log_every=0)
    mc = tiny_config(9, n_patches=8)
    a = train(_short(site_a), mc, cfg)
    b = train(_short(site_a), mc, cfg)
    assert a.losses == b.losses
    ck = dataclasses.replace(cfg, checkpoint_every=2, checkpoint_dir=tmp_path)
    train(_short(site_a), mc, ck)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000002.pt", "step-0000004.pt"]
    resumed = train(_short(site_a), mc, cfg, resume_from=tmp_path / "step-0000002.pt")
    assert resumed.losses == a.losses[2:]
    for k, v in a.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k]), k


def test_training_rejects_bad_input(site_a: SiteData) -> None:
    cfg = TrainConfig(steps=1, log_every=0)
    with pytest.raises(ValueError, match="channels"):
        train(_short(site_a), tiny_config(5), cfg)
    with pytest.raises(ValueError, match="gap-free"):
        train([s.slice(0, 100) for s in site_a.normal], tiny_config(9), cfg)
    with pytest.raises(ValueError):
        TrainConfig(checkpoint_every=5)
    assert math.isinf(
        train(_short(site_a), tiny_config(9, n_patches=4), dataclasses.replace(
            cfg, batch_size=2)).steps_per_s) is False


def test_batches_degrade_windows_at_their_origin_with_the_patch_size(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing origin would silently disable the published speed-up."""
    import ml.training.train as train_module

    seen: list[tuple[np.ndarray, np.ndarray, int | None, int | None]] = []
    real = train_module.degrade

    def spy(window: np.ndarray, rng: np.random.Generator, config: DegradationConfig,
            pool: np.ndarray, origin: int | None = None,
            patch_size: int | None = None) -> object:
        seen.append((window, pool, origin, patch_size))
        return real(window, rng, config, pool=pool, origin=origin, patch_size=patch_size)

    monkeypatch.setattr(train_module, "degrade", spy)
    rng = np.random.default_rng(0)
    segs = [rng.normal(size=(300 + 50 * i, 2)).astype(np.float32) for i in range(3)]
    sample_batch(segs, 64, 12, rng, DegradationConfig(), 8)
    assert len(seen) == 12
    for window, pool, origin, patch in seen:
        assert origin is not None and patch == 8
        assert np.array_equal(pool[origin:origin + 64], window)
