"""Batched scoring of whole series with a trained model (no training here).

A series of ``T >= window`` steps is covered by windows every ``stride`` steps (the last
window is aligned to the end); windows of all series in a call are stacked and run
through the model ``batch_size`` at a time; the anomaly probability of a step is the
mean of its probabilities over the windows covering it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ml.data.scaling import GapPolicy, Scaler, Segment, fill_gaps
from ml.models.anomalybert import AnomalyBert

logger = logging.getLogger(__name__)


class InputError(ValueError):
    """A series that cannot be scored (wrong channels, too short, not finite)."""


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start of every window covering ``length`` steps (last one aligned to the end).

    Raises:
        InputError: ``length < window``.

    """
    if length < window:
        raise InputError(f"a series needs at least {window} steps, got {length}")
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


class Scorer:
    """Scores raw series with a model and its scaler.

    Args:
        model: Trained network (put in eval mode here).
        scaler: The scaler fitted with the model.
        batch_size: Windows per forward pass.
        stride: Step between windows; default a quarter window.

    """

    def __init__(self, model: AnomalyBert, scaler: Scaler, batch_size: int = 64,
                 stride: int | None = None) -> None:
        if scaler.n_channels != model.config.n_channels:
            raise ValueError("scaler and model disagree on the channel count")
        self.model = model.eval()
        self.scaler = scaler
        self.batch_size = max(1, batch_size)
        self.window = model.config.window
        self.stride = max(1, stride or self.window // 4)

    @property
    def n_channels(self) -> int:
        """Channels the model expects."""
        return self.model.config.n_channels

    def check(self, values: np.ndarray) -> None:
        """Raise :class:`InputError` unless ``values`` is a scorable ``(T, C)`` array."""
        if values.ndim != 2:
            raise InputError(f"a series must be a (steps, channels) array, got {values.shape}")
        if values.shape[1] != self.n_channels:
            raise InputError(f"expected {self.n_channels} channels, got {values.shape[1]}")
        if values.shape[0] < self.window:
            raise InputError(f"a series needs at least {self.window} steps, "
                             f"got {values.shape[0]}")
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).any(axis=1).sum())
            raise InputError(f"{bad} step(s) contain NaN or infinite values")

    def score(self, series: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Anomaly probability per step of every raw ``(T_i, C)`` series.

        Raises:
            InputError: A series fails :meth:`check`.

        """
        for values in series:
            self.check(values)
        return self.score_scaled([self.scaler.transform(v) for v in series])

    def score_scaled(self, series: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Like :meth:`score` for already scaled, finite series."""
        index: list[tuple[int, int]] = []
        for i, values in enumerate(series):
            index.extend((i, s) for s in window_starts(len(values), self.window, self.stride))
        sums = [np.zeros(len(v)) for v in series]
        counts = [np.zeros(len(v)) for v in series]
        with torch.inference_mode():
            for b in range(0, len(index), self.batch_size):
                chunk = index[b:b + self.batch_size]
                batch = np.stack([series[i][s:s + self.window] for i, s in chunk])
                probs = torch.sigmoid(self.model(torch.from_numpy(
                    np.ascontiguousarray(batch, dtype=np.float32)))).numpy()
                for (i, s), p in zip(chunk, probs, strict=True):
                    sums[i][s:s + self.window] += p
                    counts[i][s:s + self.window] += 1
        return [s / c for s, c in zip(sums, counts, strict=True)]

    def score_with_gaps(self, values: np.ndarray, policy: GapPolicy = GapPolicy.INTERPOLATE,
                        max_gap: int = 6) -> np.ndarray:
        """Score a raw series that may contain gaps (NaN).

        Gaps are handled by :func:`ml.data.scaling.fill_gaps`; steps in dropped gaps or
        in segments shorter than a window get a NaN score.
        """
        return self.score_gapped([values], policy, max_gap)[0].scores

    def score_gapped(self, series: Sequence[np.ndarray],
                     policy: GapPolicy = GapPolicy.INTERPOLATE,
                     max_gap: int = 6) -> list[GappedScores]:
        """Like :meth:`score_with_gaps` for several series, with the imputed steps.

        The gap-free segments of all series are scored in one batched pass.
        """
        pieces: list[tuple[int, Segment]] = []
        out: list[GappedScores] = []
        for i, values in enumerate(series):
            out.append(GappedScores(np.full(len(values), np.nan),
                                    np.zeros(len(values), dtype=bool)))
            pieces.extend((i, seg) for seg in
                          fill_gaps(values, policy, max_gap, min_length=self.window))
        if not pieces:
            return out
        scores = self.score_scaled([self.scaler.transform(seg.values) for _, seg in pieces])
        for (i, seg), sc in zip(pieces, scores, strict=True):
            out[i].scores[seg.start:seg.stop] = sc
            out[i].imputed[seg.start:seg.stop] = seg.imputed
        return out


@dataclass(frozen=True)
class GappedScores:
    """Scores of a series with gaps.

    Attributes:
        scores: Anomaly probability per step, shape ``(T,)``; NaN where the step is in a
            dropped gap or in a segment shorter than a window.
        imputed: ``(T,)`` True where a scored step's reading was interpolated.

    """

    scores: np.ndarray
    imputed: np.ndarray
