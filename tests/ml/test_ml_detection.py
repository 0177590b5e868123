from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.data.scaling import Scaler
from ml.data.sources import Series
from ml.detection import AnomalyInterval, IntervalRules, anomaly_intervals, score_devices
from ml.inference import InputError, Scorer
from ml.models.anomalybert import AnomalyBert
from tests.ml.ml_helpers import tiny_config

STEP = 10_000
TS = 1_000_000 + np.arange(12, dtype=np.int64) * STEP


def _iv(scores: list[float], rules: IntervalRules | None = None) -> list[tuple[int, int, int]]:
    found = anomaly_intervals("D", TS, np.array(scores, dtype=float), 0.5, STEP, rules)
    return [((i.start_ms - TS[0]) // STEP, (i.end_ms - TS[0]) // STEP, i.steps) for i in found]


def test_runs_at_or_above_the_threshold_become_intervals() -> None:
    s = [0.1, 0.5, 0.9, 0.2, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert _iv(s) == [(1, 3, 2), (5, 6, 1)]  # 0.5 counts (score ≥ threshold), end exclusive
    found = anomaly_intervals("D", TS, np.array(s), 0.5, STEP)
    assert found[0] == AnomalyInterval("D", int(TS[1]), int(TS[3]), 2, 0.9, 0.7, False)
    assert _iv(s, IntervalRules(min_steps=2)) == [(1, 3, 2)]
    # runs two steps apart merge under merge_gap=2, not under 1
    assert _iv(s, IntervalRules(merge_gap=2)) == [(1, 6, 3)]
    assert _iv(s, IntervalRules(merge_gap=1)) == [(1, 3, 2), (5, 6, 1)]


def test_gaps_split_intervals_and_ongoing_is_the_last_scored_step() -> None:
    nan = float("nan")
    s = [0.9, nan, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, nan]
    # never merged across an unscored step, whatever merge_gap says
    assert _iv(s, IntervalRules(merge_gap=5))[:2] == [(0, 1, 1), (2, 3, 1)]
    last = anomaly_intervals("D", TS, np.array(s), 0.5, STEP)[-1]
    assert last.ongoing and last.start_ms == TS[10]
    assert not anomaly_intervals("D", TS, np.full(12, nan), 0.5, STEP)
    with pytest.raises(ValueError):
        IntervalRules(min_steps=0)


def test_score_devices_matches_the_scorer_and_rejects_unscorable_series() -> None:
    torch.manual_seed(0)
    cfg = tiny_config(3, n_patches=4)  # window of 32 steps
    scorer = Scorer(AnomalyBert(cfg), Scaler.identity(3), stride=8)
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(100, 3))
    vals[40:43] = np.nan  # short gap: interpolated
    vals[70:80] = np.nan  # long gap: splits; 20 steps after it are too short to score
    ts = np.arange(100, dtype=np.int64) * STEP
    [d] = score_devices(scorer, [Series("D", ts, vals)], 0.5, STEP)
    np.testing.assert_array_equal(d.scores, scorer.score_with_gaps(vals), strict=True)
    assert d.scored[:70].all() and not d.scored[70:].any()
    assert np.flatnonzero(d.imputed).tolist() == [40, 41, 42]
    assert (d.anomalous == (d.scored & (np.nan_to_num(d.scores) >= 0.5))).all()
    with pytest.raises(InputError, match="one window"):
        score_devices(scorer, [Series("D", ts[:20], vals[:20])], 0.5, STEP)
    with pytest.raises(InputError, match="channels"):
        score_devices(scorer, [Series("D", ts, vals[:, :2])], 0.5, STEP)
