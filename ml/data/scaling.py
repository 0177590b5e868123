"""Per-channel scaling fitted on training data only, and explicit handling of gaps.

Scaling: :class:`Scaler` maps every channel affinely, fitted on the *training* series
only (NaN ignored): none, min-max, z-score or robust z-score (:class:`ScalerKind`), then
clips to ``±clip`` so that one absurd reading cannot saturate the network. Channels that
are (nearly) constant in training get a floor on their spread (see :class:`Scaler`). The
fitted scaler is stored in the model's metadata and reused unchanged for validation, test
and serving data.

Gaps (runs of NaN, i.e. missing readings on the regular grid) are handled by
:func:`fill_gaps`, one of two documented policies:

* ``GapPolicy.INTERPOLATE`` (default): a run of at most ``max_gap`` missing steps is
  filled by linear interpolation per channel between its neighbours (at the edges of a
  series, by the nearest reading) and flagged in :attr:`Segment.imputed`; a longer run
  splits the series into separate segments (the gap itself is dropped);
* ``GapPolicy.SPLIT``: every gap splits the series; nothing is imputed.

A step counts as missing when *any* channel is NaN (a partial reading is treated as a
gap of its missing channels: those are interpolated the same way). Segments shorter
than ``min_length`` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np


class GapPolicy(StrEnum):
    """How runs of missing steps are treated (see the module docstring)."""

    INTERPOLATE = "interpolate"
    SPLIT = "split"


@dataclass(frozen=True)
class Segment:
    """A gap-free stretch of a series.

    Attributes:
        start: Index of its first step in the original series.
        values: Readings, shape ``(T, C)``, no NaN.
        imputed: ``(T,)`` True where at least one channel was interpolated.

    """

    start: int
    values: np.ndarray
    imputed: np.ndarray

    @property
    def stop(self) -> int:
        """Index after its last step in the original series."""
        return self.start + int(self.values.shape[0])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in a 1-D boolean array."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _interpolate(values: np.ndarray) -> np.ndarray:
    """Fill NaN per channel linearly between readings; edges take the nearest reading."""
    out = values.copy()
    t = np.arange(values.shape[0])
    for c in range(values.shape[1]):
        col = out[:, c]
        bad = np.isnan(col)
        if bad.all():
            raise ValueError(f"channel {c} has no reading in a segment")
        if bad.any():
            col[bad] = np.interp(t[bad], t[~bad], col[~bad])
    return out


def fill_gaps(
    values: np.ndarray,
    policy: GapPolicy = GapPolicy.INTERPOLATE,
    max_gap: int = 6,
    min_length: int = 1,
) -> list[Segment]:
    """Split a ``(T, C)`` series at long gaps and interpolate short ones.

    Args:
        values: Readings with NaN where missing.
        policy: Gap policy (module docstring).
        max_gap: Longest run of missing steps that is interpolated (INTERPOLATE only).
        min_length: Segments shorter than this are dropped.

    Returns:
        Gap-free segments in time order (possibly none).

    """
    if values.ndim != 2:
        raise ValueError(f"values must be (T, C), got {values.shape}")
    missing = np.isnan(values).any(axis=1)
    limit = max_gap if policy is GapPolicy.INTERPOLATE else 0
    # Runs of missing rows longer than the limit are cut out; shorter ones are filled.
    cut = np.zeros(values.shape[0], dtype=bool)
    for a, b in _runs(missing):
        if b - a > limit:
            cut[a:b] = True
    segments: list[Segment] = []
    for a, b in _runs(~cut):
        if b - a < min_length:
            continue
        part = values[a:b]
        imputed = np.isnan(part).any(axis=1)
        try:
            filled = _interpolate(part) if imputed.any() else part.copy()
        except ValueError:
            continue  # a channel never reported in this stretch: unusable
        segments.append(Segment(a, filled, imputed))
    return segments


class ScalerKind(StrEnum):
    """How channels are scaled (fitted on the training series only).

    * ``none``: raw values (only clipping, when asked);
    * ``minmax``: ``(x - min) / (max - min)``, training data in ``[0, 1]`` (the published
      AnomalyBERT preprocessing);
    * ``zscore``: ``(x - mean) / std``;
    * ``robust``: ``(x - median) / (IQR / 1.349)``, a z-score that outliers in the training
      data do not stretch.
    """

    NONE = "none"
    MINMAX = "minmax"
    ZSCORE = "zscore"
    ROBUST = "robust"


#: Default scaler of new models (chosen by the ablation in docs/ml.md).
DEFAULT_SCALER = ScalerKind.ROBUST
#: A channel whose spread is below this fraction of its level is *near-constant*.
NEAR_CONSTANT = 1e-3


@dataclass(frozen=True)
class Scaler:
    """Per-channel affine scaling ``(x - offset) / scale``, fitted on training data.

    A channel that is (nearly) constant in training would get a tiny spread, and any
    later deviation would explode to thousands of scaled units. The guard: a spread
    below ``NEAR_CONSTANT`` (0.1 %) of the channel's level is raised to that floor, and an
    exactly constant channel at level 0 gets a unit scale. Such channels are listed in
    :attr:`near_constant` (and logged by the training code).

    Attributes:
        offset: Per-channel offset (min, mean or median by kind; 0 for ``none``).
        scale: Per-channel divisor (> 0).
        clip: Scaled values are clipped to ``[-clip, clip]``; ``None`` disables it.
        kind: How offset and scale were fitted.
        near_constant: Indices of channels whose spread was raised by the guard.

    """

    offset: np.ndarray
    scale: np.ndarray
    clip: float | None = 10.0
    kind: ScalerKind = ScalerKind.ZSCORE
    near_constant: tuple[int, ...] = ()

    @property
    def mean(self) -> np.ndarray:
        """The offset (name kept for z-score models registered before scaler kinds)."""
        return self.offset

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return int(self.offset.shape[0])

    @classmethod
    def identity(cls, n_channels: int) -> Scaler:
        """A scaler that leaves ``n_channels`` channels unchanged (no clipping)."""
        return cls(np.zeros(n_channels), np.ones(n_channels), None, ScalerKind.NONE)

    @classmethod
    def fit(cls, arrays: list[np.ndarray], clip: float | None = 10.0,
            kind: ScalerKind | str = ScalerKind.ZSCORE,
            floor: float = NEAR_CONSTANT) -> Scaler:
        """Fit on training arrays ``(T_i, C)`` (NaN ignored).

        Args:
            arrays: Training arrays.
            clip: Clip bound of scaled values (``None``: no clipping).
            kind: How offset and scale are fitted.
            floor: Spread floor as a fraction of the channel's level (the near-constant
                guard). ``0`` reproduces GridLake's scaler before the guard (only an
                exactly constant channel, spread ≤ 1e-8 of its level, got a unit scale),
                kept for the ablation.

        Raises:
            ValueError: No data, mismatched channels, a channel without readings, or an
                infinite value.

        """
        kind = ScalerKind(kind)
        if not arrays:
            raise ValueError("cannot fit a scaler on no data")
        widths = {np.shape(a)[-1] if np.ndim(a) == 2 else -1 for a in arrays}
        if len(widths) != 1 or -1 in widths:
            raise ValueError(f"training arrays must all be (T, C) with one C, got {widths}")
        stacked = np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays], axis=0)
        if np.isinf(stacked).any():
            raise ValueError("the training data has infinite values")
        empty = np.isnan(stacked).all(axis=0)
        if empty.any():
            raise ValueError(f"channel(s) {np.flatnonzero(empty).tolist()} have no reading "
                             "in the training data")
        n = stacked.shape[1]
        if kind is ScalerKind.NONE:
            return cls(np.zeros(n), np.ones(n), clip, kind)
        if kind is ScalerKind.MINMAX:
            lo, hi = np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0)
            offset, spread, level = lo, hi - lo, np.maximum(np.abs(lo), np.abs(hi))
        elif kind is ScalerKind.ZSCORE:
            offset = np.nanmean(stacked, axis=0)
            spread, level = np.nanstd(stacked, axis=0), np.abs(offset)
        else:
            q25, offset, q75 = np.nanpercentile(stacked, [25, 50, 75], axis=0)
            spread, level = (q75 - q25) / 1.349, np.abs(offset)
            # a channel that sits still most of the time has IQR 0: fall back to its std
            std = np.nanstd(stacked, axis=0)
            spread = np.where(spread > 0, spread, std)
        if floor < 0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        if floor == 0:
            near = spread <= 1e-8 * np.maximum(level, 1.0)
            scale = np.where(near, 1.0, spread)
        else:
            near = spread <= floor * level
            scale = np.where(near, floor * level, spread)
            scale = np.where(scale > 0, scale, 1.0)
        return cls(offset, scale, clip, kind, tuple(np.flatnonzero(near).tolist()))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scale ``(..., C)`` values (NaN stays NaN), as float32.

        Raises:
            ValueError: Wrong number of channels.

        """
        if values.shape[-1] != self.n_channels:
            raise ValueError(f"expected {self.n_channels} channels, got {values.shape[-1]}")
        out = (values - self.offset) / self.scale
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        return out.astype(np.float32)

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform` (clipped values stay clipped)."""
        return np.asarray(scaled, dtype=np.float64) * self.scale + self.offset

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the model metadata)."""
        return {"kind": self.kind.value, "offset": self.offset.tolist(),
                "scale": self.scale.tolist(), "clip": self.clip,
                "near_constant": list(self.near_constant)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Inverse of :meth:`to_dict`; also reads the z-score form of older models."""
        clip = d.get("clip")
        kind = d.get("kind", "zscore")
        kind = ScalerKind.ZSCORE if kind == "standard" else ScalerKind(kind)
        offset = d["offset"] if "offset" in d else d["mean"]
        return cls(offset=np.asarray(offset, dtype=np.float64),
                   scale=np.asarray(d["scale"], dtype=np.float64),
                   clip=None if clip is None else float(clip), kind=kind,
                   near_constant=tuple(int(i) for i in d.get("near_constant", ())))
