"""Synthetic degradation of normal windows: the self-supervised training signal.

AnomalyBERT (Jeong et al. 2023) learns to find steps that do not fit their context.
Training windows are taken from (assumed normal) data and, with some probability, an
interval is degraded; the model is trained to predict, step by step, which steps were
degraded. By default every degradation follows the published algorithm. The published
constants assume data min-max scaled to [0, 1]; here they are expressed relative to
each channel's range ``[lo, hi]`` over the replacement pool (the training segment the
window comes from), which gives the published numbers on min-max scaled data and stays
correct under any scaler.

One draw per window picks a kind (or nothing) by probability, an interval of
``[int(min_fraction·T), int(max_fraction·T))`` steps and, for every kind but length
adjusting, channels (each with probability ``channel_fraction``, at least one):

* **soft replacing** - each chosen channel is blended with an interval of a source
  channel drawn among all channels, starting anywhere in the pool, reversed in time and
  flipped upside down (``lo + hi - x``) with probability 0.5 each; the blend weight is
  a trapezoid rising from 0 to 0.7 and back; the whole interval is labelled;
* **uniform replacing** - each chosen channel becomes a constant drawn from
  ``U(lo, hi)``;
* **peak noising** - at one step inside the interval each chosen channel jumps to the
  opposite end of its range; the peak step and one patch on each side are labelled;
* **length adjusting** - all channels are slowed down (the interval repeats samples and
  the rest of the window is shifted in time) or sped up (the interval is taken with a
  stride from the pool and the steps before it are shifted back in time); only the
  slowed or sped-up part is labelled, the shift has no level jump;
* **white noise** (off by default) - ``N(0, (0.003·(hi - lo))²)`` noise, clipped to the
  range.

:meth:`DegradationConfig.gridlake_v1` keeps GridLake's earlier variant for ablations.
Everything is driven by a caller-supplied :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np

# Guards int(length · fraction) against binary rounding (e.g. 0.1 is not exact).
_EPS = 1e-9


class DegradationKind(StrEnum):
    """Kinds of synthetic degradation."""

    SOFT_REPLACE = "soft_replace"
    UNIFORM_REPLACE = "uniform_replace"
    PEAK_NOISE = "peak_noise"
    LENGTH_ADJUST = "length_adjust"
    WHITE_NOISE = "white_noise"


_CHOICES: dict[str, tuple[str, ...]] = {
    "units": ("range", "scaled"),
    "peak_mode": ("opposite", "spike"),
    "soft_source": ("other", "same"),
    "soft_flip": ("range", "mean"),
    "soft_ramp": ("zero_ends", "positive"),
    "length_mode": ("shift", "resample"),
}


@dataclass(frozen=True)
class DegradationConfig:
    """Probabilities, sizes and variant switches of the degradations.

    The defaults are the published algorithm; :meth:`gridlake_v1` is GridLake's earlier
    variant. ``T`` is the window length, ``[lo, hi]`` a channel's range over the pool.

    Attributes:
        soft_replace: Probability that the draw is a soft replacement (published 0.5).
        uniform_replace: Probability of a uniform replacement (0.15).
        peak_noise: Probability of peak noising (0.15).
        length_adjust: Probability of a length adjustment (0.1).
        white_noise: Probability of white noise (0.0); with the remaining probability
            nothing happens.
        draws: Degradation draws per window (published 1). A later length adjustment
            moves or clears the labels of earlier draws along with their values.
        max_fraction: Interval lengths are below ``int(max_fraction·T)`` (0.15).
        min_fraction: Interval lengths are at least ``int(min_fraction·T)`` and at least
            1 (published 0.015, a tenth of ``max_fraction``).
        include_max_length: Allow lengths up to ``int(max_fraction·T)`` inclusive
            (GridLake v1) instead of exclusive (published).
        channel_fraction: Each channel is degraded with this probability, and the
            channel with the smallest draw always is (published 0.3). Length adjusting
            in ``"shift"`` mode always degrades every channel.
        units: ``"range"``: ``uniform_range``, ``peak_range`` and ``noise_std`` are
            fractions of each channel's pool range and white noise is clipped to the
            range (published); ``"scaled"``: they are absolute scaled units (v1).
        uniform_range: A uniform replacement's constant is drawn from this range
            (``(0, 1)``: anywhere in ``[lo, hi]``).
        peak_mode: ``"opposite"``: the peak step of a channel below its range midpoint
            becomes ``hi - U(peak_range)·(hi - lo)``, otherwise ``lo + ...``, at a step
            drawn inside the interval (published); ``"spike"``: a one-step interval gets
            ``±U(peak_range)`` added (v1).
        peak_range: Magnitude range of a peak (published ``(0, 0.1)``).
        peak_label_margin: Steps labelled on each side of the peak step; ``None``: the
            model's patch size (published), passed to :func:`degrade`.
        soft_source: ``"other"``: each chosen channel draws its own source channel (any
            channel, itself included), source start, reversal and flip (published);
            ``"same"``: each channel is replaced by itself at one shared source start,
            away from the interval when the pool is the window, with one shared
            reversal and flip draw (v1).
        soft_reverse_prob: Probability that the source is played backwards (0.5).
        flip_prob: Probability that the source is flipped upside down (0.5).
        soft_flip: ``"range"``: flipped as ``lo + hi - x`` with the source channel's
            pool range (published ``1 - x``); ``"mean"``: around the source's mean (v1).
        soft_weight_max: Plateau of the blend weight (published 0.7).
        soft_ramp: ``"zero_ends"``: each ramp has ``int(ramp_fraction·L)`` steps evenly
            spaced from 0 to ``soft_weight_max``, endpoints included, so the interval's
            edge steps may keep their value although labelled (published);
            ``"positive"``: the weight is strictly positive on every step (v1).
        ramp_fraction: Ramp length as a fraction of the interval (published 0.1).
        length_mode: ``"shift"``: the published time distortion of all channels;
            ``"resample"``: the chosen channels of the interval are refilled with a
            linearly resampled (0.3-0.8x or 1.25-3x speed) copy of the signal from the
            interval's start and nothing else moves (v1).
        length_factors: Speed factors of ``"shift"`` length adjusting (2, 3, 4).
        noise_std: Standard deviation of white noise (published 0.003).

    """

    soft_replace: float = 0.5
    uniform_replace: float = 0.15
    peak_noise: float = 0.15
    length_adjust: float = 0.1
    white_noise: float = 0.0
    draws: int = 1
    max_fraction: float = 0.15
    min_fraction: float = 0.015
    include_max_length: bool = False
    channel_fraction: float = 0.3
    units: Literal["range", "scaled"] = "range"
    uniform_range: tuple[float, float] = (0.0, 1.0)
    peak_mode: Literal["opposite", "spike"] = "opposite"
    peak_range: tuple[float, float] = (0.0, 0.1)
    peak_label_margin: int | None = None
    soft_source: Literal["other", "same"] = "other"
    soft_reverse_prob: float = 0.5
    flip_prob: float = 0.5
    soft_flip: Literal["range", "mean"] = "range"
    soft_weight_max: float = 0.7
    soft_ramp: Literal["zero_ends", "positive"] = "zero_ends"
    ramp_fraction: float = 0.1
    length_mode: Literal["shift", "resample"] = "shift"
    length_factors: tuple[int, ...] = (2, 3, 4)
    noise_std: float = 0.003

    def __post_init__(self) -> None:
        probs = self.probabilities
        if any(p < 0 for p in probs.values()) or sum(probs.values()) > 1.0 + 1e-9:
            raise ValueError("degradation probabilities must be >= 0 and sum to at most 1")
        if not 0 < self.max_fraction <= 1 or not 0 < self.channel_fraction <= 1:
            raise ValueError("max_fraction and channel_fraction must be in (0, 1]")
        if not 0 <= self.min_fraction <= self.max_fraction:
            raise ValueError("min_fraction must be in [0, max_fraction]")
        if self.draws < 1:
            raise ValueError("draws must be at least 1")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}")
        if not 0 <= self.ramp_fraction <= 0.5:
            raise ValueError("ramp_fraction must be in [0, 0.5]")
        if not 0 < self.soft_weight_max <= 1:
            raise ValueError("soft_weight_max must be in (0, 1]")
        if not (0 <= self.flip_prob <= 1 and 0 <= self.soft_reverse_prob <= 1):
            raise ValueError("flip_prob and soft_reverse_prob must be in [0, 1]")
        if not self.length_factors or any(f < 2 for f in self.length_factors):
            raise ValueError("length_factors must be integers >= 2")
        if self.peak_label_margin is not None and self.peak_label_margin < 0:
            raise ValueError("peak_label_margin must be >= 0")

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
        """JSON-ready form (stored in the model metadata)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DegradationConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        A dict written before the published algorithm became the default has no
        ``units`` key. Its stored values described the GridLake v1 variant, so its
        missing keys are taken from :meth:`gridlake_v1`, not from the new defaults,
        which would mix ``±3`` scaled-unit constants with range-relative rules.
        """
        base = cls() if "units" in d else cls.gridlake_v1()
        fields = {f.name for f in dataclasses.fields(cls)}
        known: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()
                 if k in fields}
        return dataclasses.replace(base, **known)

    @classmethod
    def gridlake_v1(cls, **kwargs: Any) -> DegradationConfig:
        """GridLake's earlier variant (before the published algorithm was the default).

        Channels with probability 0.5; intervals of 1 to ``int(0.15·T)`` steps; soft
        replacing from the same channels, always reversed, flipped around the mean, with
        a strictly positive trapezoid weight up to 1; uniform constants from ``U(-3, 3)``
        and one-step peaks of ``±U(2, 6)`` in scaled units with a one-step label;
        resampled length adjusting without a time shift; white noise ``N(0, 0.5²)``.
        """
        v1: dict[str, Any] = {
            "min_fraction": 0.0, "include_max_length": True, "channel_fraction": 0.5,
            "units": "scaled", "uniform_range": (-3.0, 3.0), "peak_mode": "spike",
            "peak_range": (2.0, 6.0), "peak_label_margin": 0, "soft_source": "same",
            "soft_reverse_prob": 1.0, "flip_prob": 0.5, "soft_flip": "mean",
            "soft_weight_max": 1.0, "soft_ramp": "positive", "ramp_fraction": 0.2,
            "length_mode": "resample", "noise_std": 0.5,
        }
        return cls(**{**v1, **kwargs})

    @classmethod
    def only(cls, kind: DegradationKind, **kwargs: Any) -> DegradationConfig:
        """The published config that always applies ``kind`` (tests and ablations)."""
        return cls(**{**_only(kind), **kwargs})

    def always(self, kind: DegradationKind) -> DegradationConfig:
        """A copy with ``kind`` at probability 1 and the other kinds at 0."""
        return dataclasses.replace(self, **_only(kind))


def _only(kind: DegradationKind) -> dict[str, Any]:
    probs: dict[str, Any] = {k.value: 0.0 for k in DegradationKind}
    probs[kind.value] = 1.0
    return probs


@dataclass(frozen=True)
class SoftSource:
    """Where one channel's soft replacement came from.

    Attributes:
        channel: Source channel.
        start: Start of the source interval in the pool (or window).
        reversed: Played backwards.
        flipped: Flipped upside down.

    """

    channel: int
    start: int
    reversed: bool
    flipped: bool


@dataclass(frozen=True)
class Applied:
    """One applied degradation (recorded so tests and analyses can check it).

    Attributes:
        kind: The kind.
        start: Start of the drawn interval.
        stop: End (exclusive) of the drawn interval.
        label: ``[start, stop)`` labelled anomalous by this draw.
        channels: Degraded channels.
        peak: Peak step of peak noising.
        factor: Speed factor of ``"shift"`` length adjusting.
        lengthened: ``True``: slowed down (lengthened), ``False``: sped up.
        sources: Soft replacement sources, one per channel in ``channels``.

    """

    kind: DegradationKind
    start: int
    stop: int
    label: tuple[int, int]
    channels: tuple[int, ...]
    peak: int | None = None
    factor: int | None = None
    lengthened: bool | None = None
    sources: tuple[SoftSource, ...] = ()


@dataclass(frozen=True)
class Degraded:
    """A degraded window.

    Attributes:
        values: The window after degradation, ``(T, C)``.
        mask: ``(T,)`` True exactly on the labelled steps.
        kinds: Kind of every applied degradation, in order.
        intervals: Label interval ``[start, stop)`` of every applied degradation.
        applied: Details of every applied degradation.

    """

    values: np.ndarray
    mask: np.ndarray
    kinds: tuple[DegradationKind, ...]
    intervals: tuple[tuple[int, int], ...]
    applied: tuple[Applied, ...] = ()


def trapezoid(length: int, cfg: DegradationConfig) -> np.ndarray:
    """Soft replacement blend weights of an interval of ``length`` steps.

    Args:
        length: Interval length.
        cfg: Supplies ``soft_ramp``, ``ramp_fraction`` and ``soft_weight_max``.

    Returns:
        ``(length,)`` weights in ``[0, soft_weight_max]``.

    """
    top = cfg.soft_weight_max
    if cfg.soft_ramp == "zero_ends":
        ramp = int(length * cfg.ramp_fraction + _EPS)
        up = np.linspace(0.0, top, ramp)
        return np.concatenate([up, np.full(length - 2 * ramp, top), up[::-1]])
    ramp = max(1, int(round(length * cfg.ramp_fraction)))
    k = np.arange(length)
    return top * np.minimum(1.0, np.minimum(k + 1, length - k) / (ramp + 1))


def _interval(rng: np.random.Generator, steps: int, cfg: DegradationConfig) -> tuple[
        int, int]:
    low = max(1, int(cfg.min_fraction * steps + _EPS))
    longest = int(cfg.max_fraction * steps + _EPS)
    high = longest + 1 if cfg.include_max_length else longest
    high = min(max(low + 1, high), steps + 1)  # tiny windows: at least one step
    low = min(low, high - 1)
    length = int(rng.integers(low, high))
    start = int(rng.integers(0, steps - length + 1))
    return start, start + length


def _channels(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    u = rng.random(n)
    chosen = np.flatnonzero(u <= fraction)
    return chosen if len(chosen) else np.array([int(np.argmin(u))])


def _soft_replace(x: np.ndarray, s: int, e: int, ch: np.ndarray, pool: np.ndarray,
                  pool_is_window: bool, lo: np.ndarray, hi: np.ndarray,
                  rng: np.random.Generator, cfg: DegradationConfig) -> tuple[SoftSource, ...]:
    length = e - s
    n = len(pool)
    w = trapezoid(length, cfg)
    out: list[SoftSource] = []
    if cfg.soft_source == "other":
        for c in ch.tolist():
            sc = int(rng.integers(0, x.shape[1]))
            a = int(rng.integers(0, n - length + 1))
            rev = bool(rng.random() < cfg.soft_reverse_prob)
            flip = bool(rng.random() < cfg.flip_prob)
            src = pool[a:a + length, sc].astype(np.float64)
            src = src[::-1] if rev else src
            if flip:
                src = (lo[sc] + hi[sc] - src if cfg.soft_flip == "range"
                       else 2.0 * src.mean() - src)
            x[s:e, c] = w * src + (1.0 - w) * x[s:e, c]
            out.append(SoftSource(sc, a, rev, flip))
        return tuple(out)
    starts = np.arange(n - length + 1)
    if pool_is_window and n >= 2 * length:
        # Not the interval itself: its reversed centre would be unchanged.
        away = starts[(starts + length <= s) | (starts >= e)]
        starts = away if len(away) else starts
    a = int(rng.choice(starts))
    rev = bool(rng.random() < cfg.soft_reverse_prob)
    flip = bool(rng.random() < cfg.flip_prob)
    src = pool[a:a + length][:, ch].astype(np.float64)
    src = src[::-1] if rev else src
    if flip:
        src = (lo[ch] + hi[ch] - src if cfg.soft_flip == "range"
               else 2.0 * src.mean(axis=0) - src)
    x[s:e, ch] = w[:, None] * src + (1.0 - w[:, None]) * x[s:e, ch]
    return tuple(SoftSource(int(c), a, rev, flip) for c in ch.tolist())


def _resample(x: np.ndarray, s: int, e: int, ch: np.ndarray,
              rng: np.random.Generator) -> None:
    """GridLake v1: resample the signal from ``s`` at a random speed into ``[s, e)``.

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


def _shift_length(x: np.ndarray, mask: np.ndarray, s: int, e: int, pool: np.ndarray,
                  origin: int | None, rng: np.random.Generator,
                  cfg: DegradationConfig) -> Applied | None:
    """The published length adjustment of all channels; ``None`` when not applicable.

    ``mask`` (earlier draws' labels) is moved along with the values.
    """
    steps, length = x.shape[0], e - s
    longest = int(cfg.max_fraction * steps + _EPS)
    factor = int(rng.choice(np.asarray(cfg.length_factors)))
    everything = tuple(range(x.shape[1]))
    if length > longest // 2:
        slow = length - length % factor
        if slow == 0:
            return None
        part = slow // factor
        old, old_mask = x.copy(), mask.copy()
        x[s:s + slow] = np.repeat(old[s:s + part], factor, axis=0)
        # The rest continues where the slowed part ended: a time shift, no level jump.
        x[s + slow:] = old[s + part:steps - slow + part]
        mask[s + slow:] = old_mask[s + part:steps - slow + part]
        mask[s:s + slow] = True
        return Applied(DegradationKind.LENGTH_ADJUST, s, e, (s, s + slow), everything,
                       factor=factor, lengthened=True)
    # Sped up: needs the data before the window (published condition).
    if origin is None or origin <= 1.5 * longest:
        return None
    shift = length * (factor - 1)
    x[:s] = pool[origin - shift:origin - shift + s]
    x[s:e] = pool[origin + s - shift:origin + e:factor]
    mask[:s] = False  # clean data from the pool replaces earlier draws there
    mask[s:e] = True
    return Applied(DegradationKind.LENGTH_ADJUST, s, e, (s, e), everything,
                   factor=factor, lengthened=False)


def degrade(
    window: np.ndarray,
    rng: np.random.Generator,
    config: DegradationConfig | None = None,
    pool: np.ndarray | None = None,
    origin: int | None = None,
    patch_size: int | None = None,
) -> Degraded:
    """Degrade a scaled ``(T, C)`` window.

    Args:
        window: The clean window (not modified).
        rng: Source of randomness.
        config: Probabilities, sizes and switches; default :class:`DegradationConfig`
            (the published algorithm).
        pool: ``(L, C)`` training segment the window comes from: source of soft
            replacements, of channel ranges and of the data before the window that a
            sped-up length adjustment needs (default: the window itself).
        origin: Position of the window in ``pool`` (``pool[origin:origin + T]`` must be
            the window); without it a window is never sped up.
        patch_size: The model's patch size: the peak label margin when
            ``config.peak_label_margin`` is ``None``.

    Returns:
        The degraded window, its exact label mask and what was applied.

    Raises:
        ValueError: Bad shapes, an ``origin`` that does not locate the window in the
            pool, or a missing ``patch_size`` that peak noising needs.

    """
    cfg = config or DegradationConfig()
    if window.ndim != 2 or window.shape[0] < 1 or window.shape[1] < 1:
        raise ValueError(f"window must be (T >= 1, C >= 1), got {window.shape}")
    steps, n_ch = window.shape
    margin = cfg.peak_label_margin if cfg.peak_label_margin is not None else patch_size
    if cfg.peak_noise > 0 and margin is None:
        raise ValueError("peak noising labels one patch each side: give patch_size")
    pool_is_window = pool is None
    src = np.asarray(window if pool is None else pool, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != n_ch or len(src) < steps:
        raise ValueError(f"pool must be (L >= {steps}, {n_ch}), got {src.shape}")
    if origin is not None and not (
            0 <= origin <= len(src) - steps
            and np.array_equal(src[origin:origin + steps], window, equal_nan=True)):
        raise ValueError("pool[origin:origin + T] is not the window")
    lo, hi = np.min(src, axis=0), np.max(src, axis=0)
    rng_width = hi - lo
    x = np.array(window, dtype=np.float64, copy=True)
    mask = np.zeros(steps, dtype=bool)
    applied: list[Applied] = []
    probs = cfg.probabilities
    options = list(probs)
    cum = np.cumsum([probs[k] for k in options])
    for _ in range(cfg.draws):
        u = rng.random()
        if u >= cum[-1]:
            continue
        kind = options[int(np.searchsorted(cum, u, side="right"))]
        if kind is DegradationKind.LENGTH_ADJUST and cfg.length_mode == "shift":
            s, e = _interval(rng, steps, cfg)
            done = _shift_length(x, mask, s, e, src, origin, rng, cfg)
            if done is not None:
                applied.append(done)
            continue
        if kind is DegradationKind.LENGTH_ADJUST:
            if steps < 3:
                continue  # nothing to stretch or compress
            ch = _channels(rng, n_ch, cfg.channel_fraction)
            # At least two steps (one cannot be resampled) and never the last step,
            # which the resampling map may need to read beyond the interval.
            longest = min(max(2, int(cfg.max_fraction * steps + _EPS)), steps - 1)
            length = int(rng.integers(2, longest + 1))
            s = int(rng.integers(0, steps - 1 - length + 1))
            e = s + length
            _resample(x, s, e, ch, rng)
            label = (s, e)
            item = Applied(kind, s, e, label, tuple(ch.tolist()))
        else:
            ch = _channels(rng, n_ch, cfg.channel_fraction)
            if kind is DegradationKind.PEAK_NOISE and cfg.peak_mode == "spike":
                s = int(rng.integers(0, steps))
                e = s + 1
            else:
                s, e = _interval(rng, steps, cfg)
            label = (s, e)
            item = Applied(kind, s, e, label, tuple(ch.tolist()))
            if kind is DegradationKind.SOFT_REPLACE:
                sources = _soft_replace(x, s, e, ch, src, pool_is_window, lo, hi, rng, cfg)
                item = dataclasses.replace(item, sources=sources)
            elif kind is DegradationKind.UNIFORM_REPLACE:
                a, b = cfg.uniform_range
                if cfg.units == "range":
                    x[s:e, ch] = lo[ch] + rng.uniform(a, b, size=len(ch)) * rng_width[ch]
                else:
                    x[s:e, ch] = rng.uniform(a, b, size=len(ch))
            elif kind is DegradationKind.WHITE_NOISE:
                if cfg.units == "range":
                    noise = rng.normal(0.0, 1.0, size=(e - s, len(ch)))
                    noisy = x[s:e, ch] + cfg.noise_std * rng_width[ch] * noise
                    x[s:e, ch] = np.clip(noisy, lo[ch], hi[ch])
                else:
                    x[s:e, ch] += rng.normal(0.0, cfg.noise_std, size=(e - s, len(ch)))
            else:
                assert margin is not None
                p = s if cfg.peak_mode == "spike" else int(rng.integers(s, e))
                mag = rng.uniform(*cfg.peak_range, size=len(ch))
                if cfg.peak_mode == "spike":
                    sign = np.where(rng.random(len(ch)) < 0.5, -1.0, 1.0)
                    x[p, ch] += sign * mag
                else:
                    below = x[p, ch] < (lo[ch] + hi[ch]) / 2.0
                    off = mag * rng_width[ch]
                    x[p, ch] = np.where(below, hi[ch] - off, lo[ch] + off)
                label = (max(0, p - margin), min(steps, p + margin + 1))
                item = dataclasses.replace(item, label=label, peak=p)
        mask[label[0]:label[1]] = True
        applied.append(item)
    return Degraded(values=x.astype(window.dtype, copy=False), mask=mask,
                    kinds=tuple(a.kind for a in applied),
                    intervals=tuple(a.label for a in applied), applied=tuple(applied))
