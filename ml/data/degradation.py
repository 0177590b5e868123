"""Synthetic degradation of normal windows: the self-supervised training signal.

AnomalyBERT learns to find steps that do not fit their context. Training windows are
taken from (assumed normal) data and, with some probability, one or more intervals are
degraded; the model is trained to predict, step by step, which steps were degraded.
The degradations (applied to a random subset of channels, in *scaled* units):

* **soft replacing** - the interval is blended with an interval of the same length
  taken from elsewhere (the replacement pool, e.g. the whole training series), played
  backwards and, with probability ``flip_prob``, also flipped upside down around its
  mean; the blend weight is a trapezoid that is strictly positive on every step of the
  interval (ramps up, plateau at 1, ramps down);
* **uniform replacing** - the interval becomes a constant drawn uniformly from
  ``uniform_range``;
* **peak noising** - one step gets a spike of ``±U(peak_range)``;
* **length adjusting** - the interval is filled with a stretched (slowed) or compressed
  (sped-up) copy of the signal starting at the interval, by linear resampling; the
  series continues unchanged after the interval;
* **white noise** (optional, off by default) - Gaussian noise is added to the interval.

The label mask marks exactly the steps of the degraded intervals, for every kind
(every degraded window is labelled, whatever its columns are); nothing outside them is
changed. Everything is driven by a caller-supplied :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np


class DegradationKind(StrEnum):
    """Kinds of synthetic degradation."""

    SOFT_REPLACE = "soft_replace"
    UNIFORM_REPLACE = "uniform_replace"
    PEAK_NOISE = "peak_noise"
    LENGTH_ADJUST = "length_adjust"
    WHITE_NOISE = "white_noise"


@dataclass(frozen=True)
class DegradationConfig:
    """Probabilities and sizes of the degradations.

    Attributes:
        soft_replace: Probability that a draw is a soft replacement.
        uniform_replace: Probability of a uniform replacement.
        peak_noise: Probability of a peak.
        length_adjust: Probability of a length adjustment.
        white_noise: Probability of white noise.
        draws: Degradation draws per window; each draw picks one kind by the
            probabilities above, or nothing with the remaining probability.
        max_fraction: Longest degraded interval as a fraction of the window.
        channel_fraction: Each channel is degraded with this probability (at least one).
        flip_prob: Probability that a soft replacement is also flipped upside down.
        ramp_fraction: Length of each trapezoid ramp as a fraction of the interval.
        uniform_range: Range of the constant of a uniform replacement (scaled units).
        peak_range: Range of the magnitude of a peak (scaled units).
        noise_std: Standard deviation of white noise (scaled units).

    """

    soft_replace: float = 0.5
    uniform_replace: float = 0.15
    peak_noise: float = 0.15
    length_adjust: float = 0.1
    white_noise: float = 0.0
    draws: int = 1
    max_fraction: float = 0.15
    channel_fraction: float = 0.5
    flip_prob: float = 0.5
    ramp_fraction: float = 0.2
    uniform_range: tuple[float, float] = (-3.0, 3.0)
    peak_range: tuple[float, float] = (2.0, 6.0)
    noise_std: float = 0.5

    def __post_init__(self) -> None:
        probs = self.probabilities
        if any(p < 0 for p in probs.values()) or sum(probs.values()) > 1.0 + 1e-9:
            raise ValueError("degradation probabilities must be >= 0 and sum to at most 1")
        if not 0 < self.max_fraction <= 1 or not 0 < self.channel_fraction <= 1:
            raise ValueError("max_fraction and channel_fraction must be in (0, 1]")
        if self.draws < 1:
            raise ValueError("draws must be at least 1")

    @property
    def probabilities(self) -> dict[DegradationKind, float]:
        """Probability of each kind per draw."""
        return {
            DegradationKind.SOFT_REPLACE: self.soft_replace,
            DegradationKind.UNIFORM_REPLACE: self.uniform_replace,
            DegradationKind.PEAK_NOISE: self.peak_noise,
            DegradationKind.LENGTH_ADJUST: self.length_adjust,
            DegradationKind.WHITE_NOISE: self.white_noise,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}

    @classmethod
    def only(cls, kind: DegradationKind, **kwargs: Any) -> DegradationConfig:
        """A config that always applies ``kind`` (for tests and ablations)."""
        probs = {k.value: 0.0 for k in DegradationKind}
        probs[kind.value] = 1.0
        return cls(**{**probs, **kwargs})


@dataclass(frozen=True)
class Degraded:
    """A degraded window.

    Attributes:
        values: The window after degradation, ``(T, C)``.
        mask: ``(T,)`` True exactly on the degraded steps.
        kinds: Kind of every applied degradation, in order.
        intervals: ``[start, stop)`` of every applied degradation.

    """

    values: np.ndarray
    mask: np.ndarray
    kinds: tuple[DegradationKind, ...]
    intervals: tuple[tuple[int, int], ...]


def _trapezoid(length: int, ramp_fraction: float) -> np.ndarray:
    """Blend weights in (0, 1]: ramp up, plateau at 1, ramp down."""
    ramp = max(1, int(round(length * ramp_fraction)))
    k = np.arange(length)
    return np.minimum(1.0, np.minimum(k + 1, length - k) / (ramp + 1))


def _interval(rng: np.random.Generator, steps: int, longest: int, shortest: int = 1) -> tuple[
        int, int]:
    longest = min(max(shortest, longest), steps)
    length = int(rng.integers(shortest, longest + 1))
    start = int(rng.integers(0, steps - length + 1))
    return start, start + length


def _channels(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    chosen = np.flatnonzero(rng.random(n) < fraction)
    return chosen if len(chosen) else np.array([int(rng.integers(0, n))])


def _soft_replace(x: np.ndarray, s: int, e: int, ch: np.ndarray, pool: np.ndarray | None,
                  rng: np.random.Generator, cfg: DegradationConfig) -> None:
    length = e - s
    src_all = pool if pool is not None and len(pool) >= length else x
    n = len(src_all)
    starts = np.arange(n - length + 1)
    if src_all is x:  # not the interval itself (its reversed centre would be unchanged)
        starts = starts[(starts + length <= s) | (starts >= e)] if n >= 2 * length else starts
        starts = starts if len(starts) else np.arange(n - length + 1)
    a = int(rng.choice(starts))
    src = src_all[a:a + length][:, ch][::-1].astype(np.float64)
    if rng.random() < cfg.flip_prob:
        src = 2.0 * src.mean(axis=0) - src
    w = _trapezoid(length, cfg.ramp_fraction)[:, None]
    x[s:e, ch] = (1.0 - w) * x[s:e, ch] + w * src


def _length_adjust(x: np.ndarray, s: int, e: int, ch: np.ndarray,
                   rng: np.random.Generator) -> bool:
    """Resample the signal from ``s`` at speed ``alpha`` into ``[s, e)``.

    The map ``q_k = s + alpha·k + beta`` has its fixed point (``q_k = s + k``) half a step
    outside the interval, so no step keeps its own value by construction.
    """
    steps, length = len(x), e - s
    cap = (steps - 1 - s + 0.5) / (length - 0.5)  # keeps q within the series
    if rng.random() < 0.5 and cap >= 1.25:
        alpha = float(rng.uniform(1.25, min(3.0, cap)))  # compressed: sped up
        beta = 0.5 * (alpha - 1.0)  # fixed point at k = -0.5
    else:
        alpha = float(rng.uniform(0.3, 0.8))  # stretched: slowed down
        beta = (1.0 - alpha) * (length - 0.5)  # fixed point at k = length - 0.5
    q = s + alpha * np.arange(length) + beta
    t = np.arange(steps)
    for c in ch.tolist():
        x[s:e, c] = np.interp(q, t, x[:, c])
    return True


def degrade(
    window: np.ndarray,
    rng: np.random.Generator,
    config: DegradationConfig | None = None,
    pool: np.ndarray | None = None,
) -> Degraded:
    """Degrade a scaled ``(T, C)`` window.

    Args:
        window: The clean window (not modified).
        rng: Source of randomness.
        config: Probabilities and sizes; default :class:`DegradationConfig`.
        pool: ``(L, C)`` data to take soft replacements from (default: the window).

    Returns:
        The degraded window and its exact label mask.

    """
    cfg = config or DegradationConfig()
    if window.ndim != 2 or window.shape[0] < 1 or window.shape[1] < 1:
        raise ValueError(f"window must be (T >= 1, C >= 1), got {window.shape}")
    x = np.array(window, dtype=np.float64, copy=True)
    steps, n_ch = x.shape
    mask = np.zeros(steps, dtype=bool)
    kinds: list[DegradationKind] = []
    intervals: list[tuple[int, int]] = []
    probs = cfg.probabilities
    options = list(probs)
    p = np.array([probs[k] for k in options])
    longest = max(1, int(cfg.max_fraction * steps))
    for _ in range(cfg.draws):
        u = rng.random()
        cum = np.cumsum(p)
        if u >= cum[-1]:
            continue
        kind = options[int(np.searchsorted(cum, u, side="right"))]
        ch = _channels(rng, n_ch, cfg.channel_fraction)
        if kind is DegradationKind.PEAK_NOISE:
            s, e = _interval(rng, steps, 1)
            sign = np.where(rng.random(len(ch)) < 0.5, -1.0, 1.0)
            x[s, ch] += sign * rng.uniform(*cfg.peak_range, size=len(ch))
        elif kind is DegradationKind.UNIFORM_REPLACE:
            s, e = _interval(rng, steps, longest)
            x[s:e, ch] = rng.uniform(*cfg.uniform_range, size=len(ch))
        elif kind is DegradationKind.SOFT_REPLACE:
            s, e = _interval(rng, steps, longest)
            _soft_replace(x, s, e, ch, pool, rng, cfg)
        elif kind is DegradationKind.WHITE_NOISE:
            s, e = _interval(rng, steps, longest)
            x[s:e, ch] += rng.normal(0.0, cfg.noise_std, size=(e - s, len(ch)))
        else:
            if steps < 3:
                continue  # nothing to stretch or compress
            s, e = _interval(rng, steps - 1, max(2, longest), shortest=2)
            if not _length_adjust(x, s, e, ch, rng):
                continue
        mask[s:e] = True
        kinds.append(kind)
        intervals.append((s, e))
    return Degraded(values=x.astype(window.dtype, copy=False), mask=mask, kinds=tuple(kinds),
                    intervals=tuple(intervals))
