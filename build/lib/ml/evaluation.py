"""Detection metrics, threshold selection without test labels, and the evaluation record.

Definitions (over all labelled steps whose score is defined; a step is *predicted*
anomalous when its score is ``>= threshold``):

* **F1** (headline) - point-wise F1 without any adjustment:
  ``2·P·R / (P + R)`` with ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``;
* **PA-F1** - F1 after *point adjustment*: when any step of a contiguous true anomaly
  segment is predicted, the whole segment counts as predicted (optimistic; reported
  for comparison with the literature only);
* **AUC-ROC** - area under the ROC curve (the probability that a random anomalous step
  scores above a random normal one, ties counting half; 0.5 for a random scorer);
* **AUC-PR** - average precision, ``Σ_k (R_k − R_{k−1}) · P_k`` over the distinct score
  thresholds in decreasing order (threshold-free; a random scorer gets the anomaly
  ratio);
* **(P + R) / 2** - the mean of point-wise precision and recall;
* **recall by fault type** - share of the steps of each fault type predicted, and
  **event recall** - share of each type's fault events with at least one predicted step.

Labels may be fault-type strings, booleans or 0/1 numbers (normalised by
:func:`ml.data.labels.as_fault_types`).

Thresholds are chosen on *validation* data, never with test labels:
``ThresholdMethod.QUANTILE`` (default) takes a high quantile (99.5 %) of the scores of
held-out normal data, i.e. fixes the false-alarm rate on normal operation;
``ThresholdMethod.SYNTHETIC`` maximises F1 on held-out normal windows degraded
synthetically (the training signal, fixed seed) - it tends to sit above real faults,
which score lower than the synthetic degradations, so it is not the default. The optional
**label-tuned** figures (``oracle_*``) sweep the threshold on the *test labels*: they
are an upper bound, clearly marked, never the headline.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from ml.data.degradation import DegradationConfig, degrade
from ml.data.labels import as_fault_types
from ml.data.scaling import GapPolicy, fill_gaps
from ml.data.sources import Series
from ml.inference import Scorer


class ThresholdMethod(StrEnum):
    """How the decision threshold is chosen on validation data (no test labels)."""

    SYNTHETIC = "synthetic"
    QUANTILE = "quantile"


def precision_recall_f1(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Point-wise precision, recall and F1 (0 where undefined)."""
    tp = float(np.sum(pred & labels))
    fp = float(np.sum(pred & ~labels))
    fn = float(np.sum(~pred & labels))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True."""
    if not mask.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def point_adjust(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predictions with every true segment that has a predicted step fully predicted."""
    out = pred.copy()
    for a, b in runs(labels):
        if out[a:b].any():
            out[a:b] = True
    return out


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    pos = float(labels.sum())
    if pos == 0:
        return math.nan
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.float64)
    tp = np.cumsum(y)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp_k = tp[last]
    precision = tp_k / (last + 1)
    recall = tp_k / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by ranks (ties count half); NaN without both classes."""
    y = np.asarray(labels, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(scores, kind="stable")
    s = np.asarray(scores)[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average rank of each run of equal scores (1-based), so ties count half
    edges = np.r_[0, np.flatnonzero(np.diff(s)) + 1, len(s)]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        ranks[a:b] = (a + 1 + b) / 2.0
    rank_of = np.empty_like(ranks)
    rank_of[order] = ranks
    return float((rank_of[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold maximising point-wise F1 and that F1 (``(inf, 0)`` without positives)."""
    pos = float(labels.sum())
    if pos == 0 or len(scores) == 0:
        return math.inf, 0.0
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp_k = tp[last].astype(np.float64)
    f1 = 2 * tp_k / ((last + 1) + pos)
    k = int(np.argmax(f1))
    return float(s[last[k]]), float(f1[k])


@dataclass(frozen=True)
class Evaluation:
    """Detection quality of a model on labelled series.

    Attributes:
        threshold: Decision threshold on the anomaly probability.
        threshold_method: How it was chosen (``synthetic``, ``quantile``, or ``given``).
        f1: Point-wise F1 without point adjustment (headline).
        precision: Point-wise precision.
        recall: Point-wise recall.
        mean_pr: ``(precision + recall) / 2``.
        pa_f1: Point-adjusted F1.
        pa_precision: Point-adjusted precision.
        pa_recall: Point-adjusted recall.
        auc_pr: Average precision (threshold-free).
        auc_roc: Area under the ROC curve (threshold-free).
        flagged_ratio: Share of steps predicted anomalous at the threshold (compare with
            ``anomaly_ratio``: a threshold rule that flags far more is unusable).
        anomaly_ratio: Share of anomalous steps (the AUC-PR of a random scorer).
        n_steps: Steps evaluated.
        recall_by_type: Point-wise recall per fault type.
        event_recall_by_type: Share of fault events with a predicted step, per type.
        oracle_threshold: LABEL-TUNED threshold (best F1 on the test labels), if asked.
        oracle_f1: LABEL-TUNED point-wise F1 (an upper bound, not a result), if asked.

    """

    threshold: float
    threshold_method: str
    f1: float
    precision: float
    recall: float
    mean_pr: float
    pa_f1: float
    pa_precision: float
    pa_recall: float
    auc_pr: float
    anomaly_ratio: float
    n_steps: int
    recall_by_type: dict[str, float] = field(default_factory=dict)
    event_recall_by_type: dict[str, float] = field(default_factory=dict)
    oracle_threshold: float | None = None
    oracle_f1: float | None = None
    auc_roc: float = math.nan
    flagged_ratio: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the model metadata)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def evaluate_scores(
    scores: Sequence[np.ndarray],
    fault_types: Sequence[np.ndarray],
    threshold: float,
    threshold_method: str = "given",
    label_tuned: bool = False,
) -> Evaluation:
    """Metrics of per-step scores against per-step labels.

    Labels are fault types (``""`` = normal), booleans or 0/1 numbers, one per score.
    Steps with a NaN score (gaps, too-short segments) are left out. Segments for point
    adjustment and events never span two series.

    Raises:
        ValueError: A label array whose length differs from its scores, or no step with
            a score.

    """
    sc_parts, lab_parts, ft_parts, pred_parts, pa_parts = [], [], [], [], []
    events: dict[str, list[bool]] = {}
    for s, ft in zip(scores, fault_types, strict=True):
        ft = as_fault_types(ft)
        if len(ft) != len(s):
            raise ValueError(f"{len(ft)} labels for {len(s)} scores")
        ok = ~np.isnan(s)
        s, ft = s[ok], ft[ok]
        lab = ft != ""
        pred = s >= threshold
        sc_parts.append(s)
        lab_parts.append(lab)
        ft_parts.append(ft)
        pred_parts.append(pred)
        pa_parts.append(point_adjust(pred, lab))
        for kind in np.unique(ft[lab]).tolist():
            for a, b in runs(ft == kind):
                events.setdefault(kind, []).append(bool(pred[a:b].any()))
    sc = np.concatenate(sc_parts) if sc_parts else np.zeros(0)
    if not len(sc):
        raise ValueError("no step has a score (every series is shorter than a window or "
                         "in a gap)")
    lab = np.concatenate(lab_parts)
    ft_all = np.concatenate(ft_parts)
    pred = np.concatenate(pred_parts)
    p, r, f = precision_recall_f1(pred, lab)
    pap, par, paf = precision_recall_f1(np.concatenate(pa_parts), lab)
    by_type = {k: float(pred[ft_all == k].mean()) for k in sorted(np.unique(ft_all[lab]))}
    oracle_t = oracle_f = None
    if label_tuned:
        oracle_t, oracle_f = best_f1_threshold(sc, lab)
    return Evaluation(
        threshold=float(threshold), threshold_method=threshold_method, f1=f, precision=p,
        recall=r, mean_pr=(p + r) / 2, pa_f1=paf, pa_precision=pap, pa_recall=par,
        auc_pr=average_precision(sc, lab), auc_roc=roc_auc(sc, lab),
        flagged_ratio=float(pred.mean()), anomaly_ratio=float(lab.mean()) if len(lab) else 0.0,
        n_steps=int(len(lab)), recall_by_type=by_type,
        event_recall_by_type={k: float(np.mean(v)) for k, v in sorted(events.items())},
        oracle_threshold=oracle_t, oracle_f1=oracle_f,
    )


def choose_threshold(
    scorer: Scorer,
    validation: Sequence[Series],
    method: ThresholdMethod = ThresholdMethod.QUANTILE,
    degradation: DegradationConfig | None = None,
    quantile: float = 0.995,
    seed: int = 12345,
    max_gap: int = 6,
) -> float:
    """A decision threshold from held-out *normal* validation series (labels unused).

    Args:
        scorer: Scorer of the model.
        validation: Normal series not used for training.
        method: ``SYNTHETIC``: best F1 on non-overlapping validation windows degraded
            with ``degradation`` (seeded); ``QUANTILE``: the ``quantile`` of the scores.
        degradation: Degradation for the synthetic method (default: training defaults).
        quantile: Quantile for the quantile method.
        seed: Seed of the synthetic degradation.
        max_gap: Longest interpolated gap.

    Raises:
        ValueError: No validation window.

    """
    w = scorer.window
    segs = [scorer.scaler.transform(seg.values) for s in validation
            for seg in fill_gaps(s.values, GapPolicy.INTERPOLATE, max_gap, min_length=w)]
    if not segs:
        raise ValueError(f"no gap-free validation stretch of {w} steps")
    if method is ThresholdMethod.QUANTILE:
        scores = np.concatenate(scorer.score_scaled(segs))
        return float(np.quantile(scores, quantile))
    rng = np.random.default_rng(seed)
    cfg = degradation or DegradationConfig()
    windows, masks = [], []
    for seg in segs:
        for a in range(0, len(seg) - w + 1, w):
            d = degrade(seg[a:a + w], rng, cfg, pool=seg, origin=a,
                        patch_size=scorer.model.config.patch_size)
            windows.append(d.values)
            masks.append(d.mask)
    scores = np.concatenate(scorer.score_scaled(windows))
    threshold, _ = best_f1_threshold(scores, np.concatenate(masks))
    return threshold


def evaluate_model(
    scorer: Scorer,
    test: Sequence[Series],
    threshold: float,
    threshold_method: str = "given",
    label_tuned: bool = False,
    max_gap: int = 6,
) -> Evaluation:
    """Score labelled test series (gaps handled) and compute :class:`Evaluation`.

    Raises:
        ValueError: A test series has no labels.

    """
    fts = []
    for s in test:
        if s.fault_types is None:
            raise ValueError(f"{s.device_id}: test series need labels")
        fts.append(s.fault_types)
    scores = [scorer.score_with_gaps(s.values, max_gap=max_gap) for s in test]
    return evaluate_scores(scores, fts, threshold, threshold_method, label_tuned)
