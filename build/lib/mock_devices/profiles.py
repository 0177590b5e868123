"""Load shapes of residential, commercial and industrial customers.

Each class has an hourly shape for weekdays and weekends (local time), interpolated to
minutes, and a seasonal factor (heating in winter, cooling in summer). The shapes are
normalised so that the weekday mean is 1.0; a meter's load is its mean power times the
shape, the seasonal factor and its own multiplicative noise.
"""

from __future__ import annotations

import numpy as np

CLASSES: tuple[str, ...] = ("residential", "commercial", "industrial")
RESIDENTIAL, COMMERCIAL, INDUSTRIAL = 0, 1, 2

# Hourly shapes (hour 0..23, value at the start of the hour), weekday then weekend.
_HOURLY: dict[tuple[int, bool], tuple[float, ...]] = {
    (RESIDENTIAL, False): (
        0.55, 0.48, 0.45, 0.44, 0.45, 0.55, 0.85, 1.25, 1.20, 0.90, 0.80, 0.80,
        0.85, 0.80, 0.75, 0.80, 0.95, 1.30, 1.75, 1.95, 1.85, 1.55, 1.10, 0.75,
    ),
    (RESIDENTIAL, True): (
        0.60, 0.52, 0.47, 0.45, 0.45, 0.50, 0.62, 0.85, 1.15, 1.30, 1.25, 1.20,
        1.20, 1.10, 1.00, 1.00, 1.10, 1.35, 1.70, 1.85, 1.75, 1.50, 1.15, 0.80,
    ),
    (COMMERCIAL, False): (
        0.35, 0.33, 0.33, 0.33, 0.35, 0.40, 0.60, 1.05, 1.50, 1.65, 1.70, 1.70,
        1.60, 1.65, 1.70, 1.65, 1.55, 1.35, 1.05, 0.80, 0.60, 0.50, 0.42, 0.38,
    ),
    (COMMERCIAL, True): (
        0.33, 0.32, 0.32, 0.32, 0.33, 0.35, 0.40, 0.50, 0.65, 0.80, 0.85, 0.85,
        0.85, 0.85, 0.80, 0.75, 0.70, 0.62, 0.55, 0.48, 0.42, 0.38, 0.35, 0.34,
    ),
    (INDUSTRIAL, False): (
        0.55, 0.52, 0.52, 0.52, 0.55, 0.75, 1.20, 1.30, 1.32, 1.32, 1.30, 1.25,
        1.15, 1.28, 1.32, 1.32, 1.30, 1.28, 1.25, 1.20, 1.15, 1.05, 0.75, 0.60,
    ),
    (INDUSTRIAL, True): (
        0.50, 0.48, 0.48, 0.48, 0.50, 0.55, 0.62, 0.66, 0.68, 0.68, 0.68, 0.66,
        0.62, 0.62, 0.62, 0.62, 0.60, 0.58, 0.56, 0.55, 0.54, 0.53, 0.52, 0.50,
    ),
}

NOISE_SIGMA: np.ndarray = np.array([0.35, 0.15, 0.08])
"""Standard deviation of the log-normal load noise per class."""

NOISE_PHI: float = 0.96
"""Minute-to-minute autocorrelation of the load noise."""


def _minute_shapes() -> np.ndarray:
    """Shapes as an array [class, weekend, minute of day]."""
    out = np.empty((len(CLASSES), 2, 1440))
    hours = np.arange(25) * 60.0
    minutes = np.arange(1440) + 0.5
    for cls in range(len(CLASSES)):
        weekday_mean = float(np.mean(_HOURLY[(cls, False)]))
        for weekend in (False, True):
            hourly = np.array(_HOURLY[(cls, weekend)] + (_HOURLY[(cls, weekend)][0],))
            out[cls, int(weekend)] = np.interp(minutes, hours, hourly) / weekday_mean
    return out


SHAPES: np.ndarray = _minute_shapes()
"""Per-minute load shapes [class, weekend, minute of day], weekday mean 1.0."""


def seasonal_factor(day_of_year: int) -> np.ndarray:
    """Seasonal multiplier per class for a day of the year (northern hemisphere).

    ``s = cos(2π (doy − 15) / 365)`` is +1 in mid-January and −1 in mid-July; heating
    raises residential load in winter, air conditioning raises residential and
    commercial load in summer.
    """
    s = float(np.cos(2 * np.pi * (day_of_year - 15) / 365.0))
    winter, summer = max(s, 0.0), max(-s, 0.0)
    return np.array([
        1.0 + 0.20 * winter + 0.15 * summer,
        1.0 + 0.05 * winter + 0.20 * summer,
        1.0 + 0.03 * s,
    ])


def peak_factor(cls: int) -> float:
    """Largest shape value times the largest seasonal factor of a class."""
    season_max = max(float(seasonal_factor(d)[cls]) for d in range(1, 366))
    return float(SHAPES[cls].max()) * season_max
