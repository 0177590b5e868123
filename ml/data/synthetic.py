"""Synthetic multivariate series with a known anomaly mix, and anomaly injection.

Public anomaly benchmarks cannot be downloaded here, so the ablation of docs/ml.md (and a
test that the faithful training defaults work) needs data whose anomalies are known
exactly. Two pieces:

* :func:`inject_anomalies` puts labelled anomalies of six documented kinds into any
  ``(T, C)`` series (e.g. the real UCI household series, or a clean simulated one);
* :class:`SyntheticSource` generates a normal training series and a labelled test series
  of correlated channels (two latent periodic factors mixed into every channel, each with
  its own level, scale and noise; one channel is a nearly constant set point, one sits at a
  large offset), so scaling and degradation choices matter as they do on real plant data.

Anomaly kinds (magnitudes in units of the channel's standard deviation ``σ`` measured on
the series the anomalies go into):

============== =========== ===================================================
kind           length      what changes (1-2 random channels unless stated)
============== =========== ===================================================
spike          1-3 steps   ± U(4, 8) σ added
level_shift    20-80       ± U(2, 4) σ added
stuck          30-100      the channel holds its value at the interval start
time_warp      40-100      the interval replays the following signal at 2-3×
                           speed (all channels)
sign_flip      40-100      the channel is mirrored about its mean
noise_burst    20-60       N(0, (2σ)²) added
============== =========== ===================================================

Anomalies never overlap; the labels mark exactly their steps with the kind's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.data.sources import DataDescription, Series

ANOMALY_KINDS: tuple[str, ...] = ("spike", "level_shift", "stuck", "time_warp", "sign_flip",
                                  "noise_burst")
_LENGTHS: dict[str, tuple[int, int]] = {
    "spike": (1, 3), "level_shift": (20, 80), "stuck": (30, 100), "time_warp": (40, 100),
    "sign_flip": (40, 100), "noise_burst": (20, 60)}


def inject_anomalies(
    values: np.ndarray,
    rng: np.random.Generator,
    n_events: int,
    kinds: Sequence[str] = ANOMALY_KINDS,
    margin: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Inject ``n_events`` non-overlapping anomalies into a copy of ``values``.

    Args:
        values: The clean ``(T, C)`` series (NaN allowed; σ ignores it).
        rng: Source of randomness.
        n_events: Number of anomalies (fewer if the series is too short to hold them).
        kinds: Kinds to draw from, uniformly (module docstring).
        margin: Normal steps kept between two anomalies.

    Returns:
        The series with anomalies and the per-step fault types (``""`` normal).

    Raises:
        ValueError: An unknown kind or a series that is not ``(T, C)``.

    """
    unknown = set(kinds) - set(ANOMALY_KINDS)
    if unknown:
        raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; known: {ANOMALY_KINDS}")
    if values.ndim != 2:
        raise ValueError(f"values must be (T, C), got {values.shape}")
    x = np.array(values, dtype=np.float64, copy=True)
    steps, n_ch = x.shape
    sigma = np.nanstd(x, axis=0)
    sigma = np.where(sigma > 0, sigma, 1.0)
    mean = np.nanmean(x, axis=0)
    labels = np.full(steps, "", dtype=object)
    busy = np.zeros(steps, dtype=bool)
    for _ in range(n_events):
        kind = str(rng.choice(list(kinds)))
        lo, hi = _LENGTHS[kind]
        length = int(rng.integers(lo, hi + 1))
        # time_warp reads ahead of the interval: leave room for the faster replay
        room = steps - length * (3 if kind == "time_warp" else 1)
        placed = False
        for _try in range(50):
            if room <= 0:
                break
            s = int(rng.integers(0, room))
            e = s + length
            if not busy[max(0, s - margin):min(steps, e + margin)].any():
                placed = True
                break
        if not placed:
            continue
        ch = rng.choice(n_ch, size=min(n_ch, int(rng.integers(1, 3))), replace=False)
        if kind == "spike":
            sign = np.where(rng.random(len(ch)) < 0.5, -1.0, 1.0)
            x[s:e, ch] += sign * rng.uniform(4.0, 8.0, len(ch)) * sigma[ch]
        elif kind == "level_shift":
            sign = np.where(rng.random(len(ch)) < 0.5, -1.0, 1.0)
            x[s:e, ch] += sign * rng.uniform(2.0, 4.0, len(ch)) * sigma[ch]
        elif kind == "stuck":
            x[s:e, ch] = x[s, ch]
        elif kind == "time_warp":
            speed = int(rng.integers(2, 4))
            x[s:e] = values[s:s + speed * length:speed][:length]
        elif kind == "sign_flip":
            x[s:e, ch] = 2.0 * mean[ch] - x[s:e, ch]
        else:
            x[s:e, ch] += rng.normal(0.0, 2.0, (length, len(ch))) * sigma[ch]
        labels[s:e] = kind
        busy[s:e] = True
    return x, labels.astype(str)


@dataclass(frozen=True)
class SyntheticSource:
    """A normal training series and a labelled test series of correlated channels.

    Attributes:
        seed: Seed of the whole data set.
        n_channels: Channels (at least 3: the last two are the set point and the offset
            channel).
        train_steps: Length of the normal series.
        test_steps: Length of the test series.
        anomaly_events: Anomalies injected into the test series.
        step_ms: Grid spacing.
        setpoint_test_noise: Noise of the set point channel (level 50) in the test period;
            1e-4 as in training by default. A larger value (still 0.002 % of the level at
            1e-3) is the case that broke GridLake's z-score before the near-constant guard:
            a channel nearly constant in training that jitters a little more later.

    """

    seed: int = 0
    n_channels: int = 6
    train_steps: int = 20_000
    test_steps: int = 8_000
    anomaly_events: int = 15
    step_ms: int = 60_000
    setpoint_test_noise: float = 1e-4

    def __post_init__(self) -> None:
        if self.n_channels < 3:
            raise ValueError("n_channels must be at least 3")
        if self.train_steps < 1 or self.test_steps < 1:
            raise ValueError("train_steps and test_steps must be positive")

    def _clean(self, rng: np.random.Generator, steps: int,
               setpoint_noise: float = 1e-4) -> np.ndarray:
        # two latent periodic factors with slowly wandering phase, mixed per channel
        t = np.arange(steps, dtype=np.float64)
        drift = np.cumsum(rng.normal(0.0, 0.02, steps))
        f1 = np.sin(2 * np.pi * t / 97.0 + drift)
        f2 = np.sign(np.sin(2 * np.pi * t / 331.0)) * 0.5 + 0.3 * np.sin(2 * np.pi * t / 23.0)
        mix = np.random.default_rng(self.seed).normal(0.0, 1.0, (2, self.n_channels))
        level = np.random.default_rng(self.seed + 1).uniform(-5.0, 5.0, self.n_channels)
        gain = np.random.default_rng(self.seed + 2).uniform(0.5, 3.0, self.n_channels)
        x = (np.column_stack([f1, f2]) @ mix) * gain + level
        x += rng.normal(0.0, 0.05, x.shape) * gain
        x[:, -2] = 50.0 + rng.normal(0.0, setpoint_noise, steps)  # a set point that barely moves
        x[:, -1] = 230.0 + 2.0 * f1 + rng.normal(0.0, 0.1, steps)  # a large offset
        return x

    def description(self) -> DataDescription:
        """A generic description: channels ``c0 …``, no units."""
        names = tuple(f"c{i}" for i in range(self.n_channels))
        return DataDescription(source="synthetic", contract="generic", channels=names,
                               units=("",) * self.n_channels, step_ms=self.step_ms,
                               site=f"synthetic-seed{self.seed}")

    def _ts(self, start: int, steps: int) -> np.ndarray:
        return (start + np.arange(steps, dtype=np.int64)) * self.step_ms

    def load(self) -> list[Series]:
        """The normal training series (one device, unlabelled)."""
        rng = np.random.default_rng([self.seed, 1])
        x = self._clean(rng, self.train_steps)
        return [Series("synthetic", self._ts(0, self.train_steps), x)]

    def load_test(self) -> list[Series]:
        """The labelled test series (continuing after the training period)."""
        rng = np.random.default_rng([self.seed, 2])
        clean = self._clean(rng, self.test_steps, self.setpoint_test_noise)
        x, labels = inject_anomalies(clean, rng, self.anomaly_events)
        return [Series("synthetic", self._ts(self.train_steps, self.test_steps), x, labels)]
