"""From per-step scores to detections: flags and anomalous intervals (no I/O).

A device's series is scored with :meth:`ml.inference.Scorer.score_gapped` (gaps handled
as everywhere else: short ones interpolated, long ones left unscored). A step is
*anomalous* when its score is at or above the threshold; an *interval* is a run of
anomalous steps. Two rules shape intervals (:class:`IntervalRules`): runs separated by at
most ``merge_gap`` non-anomalous steps are merged (a flickering score is one alarm, not
many), and intervals with fewer than ``min_steps`` anomalous steps are dropped. An unscored
step (NaN) always ends an interval: nothing is claimed across a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.data.scaling import GapPolicy
from ml.data.sources import Series
from ml.inference import InputError, Scorer
from ml.progress import progress_bar


@dataclass(frozen=True)
class IntervalRules:
    """How anomalous steps become intervals.

    Attributes:
        min_steps: Smallest number of anomalous steps an interval keeps.
        merge_gap: Runs separated by at most this many scored, non-anomalous steps merge.

    """

    min_steps: int = 1
    merge_gap: int = 0

    def __post_init__(self) -> None:
        if self.min_steps < 1 or self.merge_gap < 0:
            raise ValueError(f"min_steps must be ≥ 1 and merge_gap ≥ 0, got {self}")


@dataclass(frozen=True)
class AnomalyInterval:
    """A run of anomalous steps of one device.

    Attributes:
        device_id: The device.
        start_ms: First anomalous step (epoch ms).
        end_ms: Last anomalous step plus one grid step (exclusive end).
        steps: Anomalous steps in it (merged runs: fewer than its span).
        peak_score: Highest score in it.
        mean_score: Mean score of its anomalous steps.
        ongoing: It reaches the last scored step: it may continue.

    """

    device_id: str
    start_ms: int
    end_ms: int
    steps: int
    peak_score: float
    mean_score: float
    ongoing: bool


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def anomaly_intervals(
    device_id: str,
    ts_ms: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    step_ms: int,
    rules: IntervalRules | None = None,
) -> list[AnomalyInterval]:
    """The anomalous intervals of one scored series (module docstring for the rules).

    Args:
        device_id: The device.
        ts_ms: Grid instants, shape ``(T,)``.
        scores: Score per step, NaN where unscored.
        threshold: Decision threshold.
        step_ms: Grid spacing.
        rules: Merge and minimum-length rules (default: every run is an interval).

    """
    r = rules or IntervalRules()
    scored = np.isfinite(scores)
    flagged = scored & (np.nan_to_num(scores, nan=-np.inf) >= threshold)
    runs = _runs(flagged)
    merged: list[list[int]] = []
    for a, b in runs:
        # merge only across scored steps: a gap (NaN) between two runs keeps them apart
        if merged and a - merged[-1][1] <= r.merge_gap and scored[merged[-1][1]:a].all():
            merged[-1][1] = b
        else:
            merged.append([a, b])
    last_scored = int(np.flatnonzero(scored)[-1]) if scored.any() else -1
    out = []
    for a, b in merged:
        hit = flagged[a:b]
        if int(hit.sum()) < r.min_steps:
            continue
        vals = scores[a:b][hit]
        out.append(AnomalyInterval(
            device_id=device_id, start_ms=int(ts_ms[a]), end_ms=int(ts_ms[b - 1]) + step_ms,
            steps=int(hit.sum()), peak_score=float(vals.max()), mean_score=float(vals.mean()),
            ongoing=b - 1 == last_scored,
        ))
    return out


@dataclass(frozen=True)
class DeviceScores:
    """One device's scored series.

    Attributes:
        device_id: The device.
        ts_ms: Grid instants, shape ``(T,)``.
        scores: Score per step (NaN: unscored: long gap or too short a segment).
        imputed: True where a scored step's reading was interpolated.
        threshold: Decision threshold used.
        intervals: Its anomalous intervals.

    """

    device_id: str
    ts_ms: np.ndarray
    scores: np.ndarray
    imputed: np.ndarray
    threshold: float
    intervals: list[AnomalyInterval]

    @property
    def scored(self) -> np.ndarray:
        """True where the step has a score."""
        return np.isfinite(self.scores)

    @property
    def anomalous(self) -> np.ndarray:
        """True where the score is at or above the threshold."""
        return self.scored & (np.nan_to_num(self.scores, nan=-np.inf) >= self.threshold)


def score_devices(
    scorer: Scorer,
    series: Sequence[Series],
    threshold: float,
    step_ms: int,
    rules: IntervalRules | None = None,
    max_gap: int = 6,
    progress: bool = False,
) -> list[DeviceScores]:
    """Score every device's series and find its anomalous intervals.

    Raises:
        InputError: A series has the wrong channel count, or no series has a gap-free
            stretch of at least one window (nothing could be scored).

    """
    out = []
    with progress_bar(progress, len(series), "scoring") as advance:
        for s in series:
            if s.values.shape[1] != scorer.n_channels:
                raise InputError(f"{s.device_id}: expected {scorer.n_channels} channels, got "
                                 f"{s.values.shape[1]}")
            g = scorer.score_gapped([s.values], GapPolicy.INTERPOLATE, max_gap)[0]
            out.append(DeviceScores(
                s.device_id, s.ts_ms, g.scores, g.imputed & np.isfinite(g.scores), threshold,
                anomaly_intervals(s.device_id, s.ts_ms, g.scores, threshold, step_ms, rules),
            ))
            advance(s.device_id)
    if series and not any(d.scored.any() for d in out):
        longest = max(len(s) for s in series)
        raise InputError(f"nothing to score: every series needs a gap-free stretch of at "
                         f"least {scorer.window} steps (one window); the longest has "
                         f"{longest} steps")
    return out
