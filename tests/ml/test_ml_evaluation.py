from __future__ import annotations

import math

import numpy as np
import pytest

from ml.data.sources import Series
from ml.evaluation import (
    Evaluation,
    ThresholdMethod,
    average_precision,
    best_f1_threshold,
    choose_threshold,
    evaluate_scores,
    point_adjust,
    precision_recall_f1,
    roc_auc,
)
from ml.pipeline import FitOutcome
from tests.ml.ml_helpers import SiteData


def test_point_metrics_and_point_adjustment() -> None:
    labels = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    pred = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    p, r, f = precision_recall_f1(pred, labels)
    assert (p, r) == (0.5, 0.2) and f == pytest.approx(2 * 0.1 / 0.7)
    adj = point_adjust(pred, labels)
    assert adj.tolist() == [0, 1, 1, 1, 0, 1, 0, 0, 0]
    pa_p, pa_r, _ = precision_recall_f1(adj, labels)
    assert (pa_p, pa_r) == (0.75, 0.6)


def test_average_precision() -> None:
    labels = np.array([1, 0, 1, 0, 0], dtype=bool)
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.2, 0.3]), labels) == 1.0
    # ranks: 1 (pos), 2 (neg), 3 (pos): AP = 0.5·1 + 0.5·(2/3)
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1, 0.1]), labels) == pytest.approx(
        0.5 + 1 / 3)
    assert average_precision(np.ones(5), labels) == pytest.approx(0.4)  # ties: one point
    rng = np.random.default_rng(0)
    lab = rng.random(20000) < 0.1
    assert average_precision(rng.random(20000), lab) == pytest.approx(lab.mean(), abs=0.01)
    assert math.isnan(average_precision(np.ones(3), np.zeros(3, dtype=bool)))


def test_best_f1_threshold() -> None:
    labels = np.array([1, 1, 0, 0, 1], dtype=bool)
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.6])
    t, f = best_f1_threshold(scores, labels)
    assert t == 0.6 and f == pytest.approx(2 * 0.75 * 1 / 1.75)
    assert best_f1_threshold(scores, np.zeros(5, dtype=bool)) == (math.inf, 0.0)


def test_evaluate_scores_per_type_nan_and_label_tuning() -> None:
    ft = np.array(["", "a", "a", "", "b", "b", "", "a"])
    scores = np.array([0.1, 0.9, 0.2, 0.1, np.nan, 0.8, 0.3, 0.1])
    ev = evaluate_scores([scores], [ft], threshold=0.5)
    assert ev.n_steps == 7  # the NaN step is left out
    assert ev.recall_by_type == {"a": pytest.approx(1 / 3), "b": 1.0}
    assert ev.event_recall_by_type == {"a": 0.5, "b": 1.0}
    assert (ev.precision, ev.recall) == (1.0, 0.5) and ev.mean_pr == 0.75
    assert ev.oracle_f1 is None and ev.oracle_threshold is None
    tuned = evaluate_scores([scores], [ft], threshold=0.5, label_tuned=True)
    assert tuned.oracle_f1 is not None and tuned.oracle_f1 >= tuned.f1
    assert tuned.f1 == ev.f1  # the headline never uses the tuned threshold
    assert Evaluation.from_dict(tuned.to_dict()) == tuned


def test_thresholds_use_no_labels(trained_a: FitOutcome, site_a: SiteData) -> None:
    unlabelled = [Series(s.device_id, s.ts_ms, s.values) for s in site_a.normal]
    scorer = trained_a.scorer()
    q = choose_threshold(scorer, unlabelled, ThresholdMethod.QUANTILE, quantile=0.99)
    normal_scores = np.concatenate(scorer.score([s.values for s in site_a.normal]))
    assert np.mean(normal_scores >= q) == pytest.approx(0.01, abs=0.01)
    s1 = choose_threshold(scorer, unlabelled[:1], ThresholdMethod.SYNTHETIC, seed=1)
    s2 = choose_threshold(scorer, unlabelled[:1], ThresholdMethod.SYNTHETIC, seed=1)
    assert s1 == s2 and 0.0 < s1 < 1.0
    with pytest.raises(ValueError):
        choose_threshold(scorer, [s.slice(0, 10) for s in unlabelled])


def test_roc_auc_matches_pairwise_count() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(300), 1)  # many ties
    labels = rng.random(300) < 0.2
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(scores, labels) == pytest.approx(pairs / (len(pos) * len(neg)))
    assert roc_auc(np.array([0.9, 0.1]), np.array([True, False])) == 1.0
    assert roc_auc(np.array([0.1, 0.9]), np.array([True, False])) == 0.0
    assert math.isnan(roc_auc(np.ones(3), np.ones(3, dtype=bool)))


@pytest.mark.parametrize("labels", [
    np.array([0, 1, 1, 0, 0, 0]),                          # 0/1 integers
    np.array([0.0, 1.0, 1.0, 0.0, 0.0, 0.0]),              # 0/1 floats
    np.array([False, True, True, False, False, False]),   # booleans
    np.array(["", "x", "x", "", "", ""]),                  # fault types
    np.array(["0", "1", "true", "normal", "false", ""], dtype=object),  # words
])
def test_evaluate_scores_reads_every_label_form(labels: np.ndarray) -> None:
    # a perfect scorer: F1 1.0 and the true anomaly ratio, whatever the label form (0/1
    # arrays used to be read as all-anomalous: ratio 1.0 and F1 0.667)
    scores = np.array([0.1, 0.9, 0.8, 0.2, 0.1, 0.3])
    ev = evaluate_scores([scores], [labels], threshold=0.5)
    assert ev.anomaly_ratio == pytest.approx(2 / 6)
    assert ev.f1 == 1.0 and ev.auc_pr == 1.0 and ev.auc_roc == 1.0


def test_evaluate_scores_refuses_ambiguous_labels() -> None:
    with pytest.raises(ValueError, match="missing"):
        evaluate_scores([np.array([0.1, 0.9])], [np.array([0.0, np.nan])], threshold=0.5)
    with pytest.raises(ValueError, match="labels for"):
        evaluate_scores([np.array([0.1, 0.9, 0.3])], [np.array([0, 1])], threshold=0.5)
    with pytest.raises(ValueError, match="no step has a score"):
        evaluate_scores([np.array([np.nan])], [np.array([1])], threshold=0.5)


def test_series_labels_from_numeric_arrays() -> None:
    s = Series("d", np.arange(4), np.zeros((4, 1)), np.array([0, 1, 0, 0]))
    assert s.labels is not None and s.labels.tolist() == [False, True, False, False]
    with pytest.raises(ValueError, match="3 labels for 4 steps"):
        Series("d", np.arange(4), np.zeros((4, 1)), np.array([0, 1, 0]))

def test_synthetic_threshold_degrades_at_the_origin_with_the_patch_size(
        trained_a: FitOutcome, site_a: SiteData, monkeypatch: pytest.MonkeyPatch) -> None:
    import ml.evaluation as evaluation_module

    seen: list[tuple[int | None, int | None]] = []
    real = evaluation_module.degrade

    def spy(window: np.ndarray, rng: np.random.Generator, config: object,
            pool: np.ndarray, origin: int | None = None,
            patch_size: int | None = None) -> object:
        seen.append((origin, patch_size))
        return real(window, rng, config, pool=pool, origin=origin,  # type: ignore[arg-type]
                    patch_size=patch_size)

    monkeypatch.setattr(evaluation_module, "degrade", spy)
    scorer = trained_a.scorer()
    choose_threshold(scorer, [Series(s.device_id, s.ts_ms, s.values)
                              for s in site_a.normal[:1]], ThresholdMethod.SYNTHETIC)
    w = scorer.window
    assert seen and all(p == scorer.model.config.patch_size for _, p in seen)
    assert [o for o, _ in seen][:3] == [0, w, 2 * w]  # non-overlapping windows
