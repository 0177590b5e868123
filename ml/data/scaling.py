"""Per-channel scaling fitted on training data only, and explicit handling of gaps.

Scaling: :class:`Scaler` standardises every channel with the mean and standard
deviation of the *training* series (NaN ignored), then clips to ``±clip`` so that one
absurd reading cannot saturate the network. Channels that are constant in training get
a unit scale. The fitted scaler is stored in the model's metadata and reused unchanged
for validation, test and serving data.

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


@dataclass(frozen=True)
class Scaler:
    """Per-channel standardisation, fitted on training data.

    Attributes:
        mean: Per-channel mean.
        scale: Per-channel standard deviation (1 for channels constant in training).
        clip: Scaled values are clipped to ``[-clip, clip]``; ``None`` disables it.

    """

    mean: np.ndarray
    scale: np.ndarray
    clip: float | None = 10.0

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, arrays: list[np.ndarray], clip: float | None = 10.0) -> Scaler:
        """Fit on training arrays ``(T_i, C)`` (NaN ignored).

        Raises:
            ValueError: No data, mismatched channels, or a channel without readings.

        """
        if not arrays:
            raise ValueError("cannot fit a scaler on no data")
        stacked = np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays], axis=0)
        if np.isnan(stacked).all(axis=0).any():
            raise ValueError("a channel has no reading in the training data")
        mean = np.nanmean(stacked, axis=0)
        std = np.nanstd(stacked, axis=0)
        tiny = 1e-8 * np.maximum(np.abs(mean), 1.0)
        scale = np.where(std > tiny, std, 1.0)
        return cls(mean=mean, scale=scale, clip=clip)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scale ``(..., C)`` values (NaN stays NaN), as float32.

        Raises:
            ValueError: Wrong number of channels.

        """
        if values.shape[-1] != self.n_channels:
            raise ValueError(f"expected {self.n_channels} channels, got {values.shape[-1]}")
        out = (values - self.mean) / self.scale
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        return out.astype(np.float32)

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform` (clipped values stay clipped)."""
        return np.asarray(scaled, dtype=np.float64) * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the model metadata)."""
        return {"kind": "standard", "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "clip": self.clip}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Inverse of :meth:`to_dict`."""
        clip = d.get("clip")
        return cls(mean=np.asarray(d["mean"], dtype=np.float64),
                   scale=np.asarray(d["scale"], dtype=np.float64),
                   clip=None if clip is None else float(clip))
