from __future__ import annotations

import torch

from ml.data.sources import Series
from ml.pipeline import FitOutcome, fit_model
from ml.training.train import TrainConfig
from ml.training.transfer import transfer
from tests.ml.ml_helpers import SiteData, tiny_config

torch.set_num_threads(1)

SUBSET = ("dc_voltage_v", "dc_current_a", "soc_pct", "max_cell_temp_c", "min_cell_temp_c",
          "cell_voltage_gap_mv")
BUDGET = TrainConfig(steps=30, lr=3e-4, warmup_steps=3, seed=100, log_every=0)


def _select(series: list[Series], channels: tuple[str, ...], all_channels: tuple[str, ...]
            ) -> list[Series]:
    idx = [all_channels.index(c) for c in channels]
    return [Series(s.device_id, s.ts_ms, s.values[:, idx], s.fault_types) for s in series]


def test_transfer_keeps_body_and_reinitialises_embedding(trained_a: FitOutcome,
                                                         site_b: SiteData) -> None:
    target = _select([s.slice(0, 1500) for s in site_b.normal], SUBSET,
                     site_b.description.channels)
    parent_state = {k: v.clone() for k, v in trained_a.model.state_dict().items()}
    res = transfer(trained_a.model, target, TrainConfig(steps=2, batch_size=2, log_every=0))
    assert res.reinitialised_embedding
    assert res.model.config.n_channels == 6 and res.scaler.n_channels == 6
    assert res.model.config.n_layers == trained_a.model.config.n_layers
    for k, v in trained_a.model.state_dict().items():  # the parent is untouched
        assert torch.equal(v, parent_state[k])
    frozen = transfer(trained_a.model, target, TrainConfig(steps=2, batch_size=2, log_every=0),
                      freeze_body_steps=2)
    for k, v in frozen.model.state_dict().items():
        if not k.startswith("embed."):
            assert torch.equal(v, parent_state[k]), k
    same = transfer(trained_a.model, [s.slice(0, 1500) for s in site_b.normal],
                    TrainConfig(steps=1, batch_size=2, log_every=0))
    assert not same.reinitialised_embedding


def test_transfer_beats_scratch_on_the_same_small_budget(trained_a: FitOutcome,
                                                         site_b: SiteData) -> None:
    """Measured (seeded): AUC-PR transfer 0.74 vs scratch 0.34 (9 channels) and 0.72 vs
    0.33 (6 channels, embedding re-initialised), 30 steps each."""
    all_ch = site_b.description.channels
    for channels in (all_ch, SUBSET):
        normal = _select(site_b.normal, channels, all_ch)
        test = _select(site_b.test, channels, all_ch)
        tuned = fit_model(normal, site_b.description, BUDGET, parent=trained_a.model,
                          test=test)
        scratch = fit_model(normal, site_b.description, BUDGET,
                            model_config=tiny_config(len(channels)), test=test)
        assert tuned.evaluation is not None and scratch.evaluation is not None
        gain = tuned.evaluation.auc_pr - scratch.evaluation.auc_pr
        assert gain >= 0.15, (len(channels), tuned.evaluation.auc_pr,
                              scratch.evaluation.auc_pr)
