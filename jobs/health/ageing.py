"""Transformer thermal ageing (IEEE C57.91), hot spot, overload and oil-rise factors.

* ageing acceleration factor ``F_AA = exp(15000/383 − 15000/(θ_H + 273))`` (1 at a
  110 °C hot spot, C57.91 Clause 5);
* equivalent ageing factor over a period ``F_EQA = Σ F_AA,n Δt_n / Σ Δt_n``;
* loss of life ``% LoL = F_EQA · t · 100 / 180 000 h`` (normal insulation life of
  180 000 h, C57.91 Clause 5).

The daily inputs are those the streaming job already keeps per transformer
(``dws_transformer``: ``aging_hours`` = Σ F_AA × reading interval, maximum hot spot and
top oil, minutes above 1.0 pu); docs/health.md gives the limits and their sources.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from jobs.health.factors import Factor, Severity, finite, grade, judged, no_data

NORMAL_LIFE_H = 180_000.0
"""Normal insulation life (C57.91 Clause 5, 50 % retained tensile strength)."""
REFERENCE_HOT_SPOT_C = 110.0
HOT_SPOT_LIMITS_C: tuple[float, float, float] = (110.0, 120.0, 140.0)
"""Above: beyond rated (110), beyond planned loading beyond nameplate (120), beyond
long-time emergency loading (140) — C57.91 §7 suggested hot-spot limits."""
FEQA_LIMITS: tuple[float, float, float] = (1.0, 2.0, 10.0)
"""Daily equivalent ageing factor above which ageing is fair, poor, critical."""
OVERLOAD_LIMITS_MIN: tuple[float, float, float] = (0.0, 30.0, 90.0)
"""Minutes above 1.0 pu in a day above which loading is fair, poor, critical."""
OVERLOAD_DEPTH_PU: tuple[float, float] = (1.2, 1.3)
"""Peak load (pu) up to which an overload is at most fair, at most poor."""
EMERGENCY_LOADING_PCT = 150.0
"""A load above this (% of rated) is critical whatever its duration (C57.91 §7 caps
planned and long-time emergency loading of distribution transformers at 1.5 pu)."""
OIL_RISE_LIMITS: tuple[float, float, float] = (1.2, 1.3, 1.5)
"""Measured over modelled top-oil rise above which cooling is fair, poor, critical."""
TOP_OIL_RISE_RATED_K = 55.0
EXP_N = 0.8
LOSS_RATIO = 5.0
"""R, load loss at rated load over no-load loss, when the nameplate gives none."""
TAU_TO_H = 3.0
"""Top-oil time constant (C57.91 typical for ONAN distribution transformers)."""
OIL_RISE_LOOKBACK_H = 12
"""Hours of load history read before the day: the model starts there, so its initial
state has decayed (4 time constants) by the day's first hour."""
OIL_RISE_WARMUP_H = 6
"""Hours after a (re)start of the model (first hour, or after a gap) that are not judged."""
MIN_EXPECTED_RISE_K = 8.0
MIN_COVERAGE = 0.5
"""A day with fewer readings than this share of the expected ones is a sensor gap."""


def aging_factor(hot_spot_c: float) -> float:
    """C57.91 ageing acceleration factor at a winding hot spot of ``hot_spot_c``."""
    return math.exp(15000.0 / 383.0 - 15000.0 / (hot_spot_c + 273.0))


def equivalent_aging(hot_spots_c: Sequence[float], durations_h: Sequence[float]) -> float:
    """F_EQA over periods of the given hot spots and durations.

    Raises:
        ValueError: No period, lengths differ, or the durations sum to 0.

    """
    if len(hot_spots_c) != len(durations_h) or not hot_spots_c:
        raise ValueError("one duration per hot spot, at least one period")
    total = float(sum(durations_h))
    if total <= 0:
        raise ValueError("durations sum to 0")
    return sum(aging_factor(t) * d for t, d in zip(hot_spots_c, durations_h,
                                                   strict=True)) / total


def loss_of_life_pct(f_eqa: float, hours: float) -> float:
    """Per cent of the normal insulation life used in ``hours`` at ``f_eqa``."""
    return f_eqa * hours * 100.0 / NORMAL_LIFE_H


def expected_top_oil_rise(k: float, r: float = LOSS_RATIO) -> float:
    """Ultimate top-oil rise over ambient (K) at load ``k`` pu (C57.91 Clause 7, ONAN)."""
    return TOP_OIL_RISE_RATED_K * ((k * k * r + 1.0) / (r + 1.0)) ** EXP_N


@dataclass(frozen=True)
class TransformerDay:
    """One transformer's day of telemetry summaries (``dws_transformer`` grain 1d).

    Attributes:
        readings: Usable readings of the day.
        expected_readings: Readings a full day has (1440 at one a minute).
        aging_hours: Σ F_AA × reading interval.
        hot_spot_max_c: Highest hot spot.
        top_oil_max_c: Highest top oil.
        load_pu_max: Largest load (pu).
        overload_minutes: Minutes above 1.0 pu.

    """

    readings: int
    expected_readings: int
    aging_hours: float | None
    hot_spot_max_c: float | None
    top_oil_max_c: float | None
    load_pu_max: float | None
    overload_minutes: float | None

    @property
    def coverage(self) -> float:
        """Share of the expected readings received."""
        return self.readings / self.expected_readings if self.expected_readings else 0.0

    def gap_note(self) -> str:
        """"" or a note on the sensor gap."""
        if self.coverage >= MIN_COVERAGE:
            return ""
        return f"sensor gap: {self.readings} of {self.expected_readings} readings"


@dataclass(frozen=True)
class OilHour:
    """One hour of ``dws_transformer`` (grain 1h) for the oil-rise check.

    Attributes:
        start_ms: Hour start.
        load_pu: Mean load of the hour (``load_pu_avg``).
        top_oil_max_c: Highest top oil of the hour.
        ambient_avg_c: Mean ambient of the hour.

    """

    start_ms: int
    load_pu: float | None
    top_oil_max_c: float | None
    ambient_avg_c: float | None


def _no_telemetry(name: str, day: TransformerDay | None) -> Factor | None:
    if day is None or day.readings <= 0:
        return no_data(name, "no transformer telemetry on this day")
    return None


def _with_gap(reason: str, day: TransformerDay) -> str:
    note = day.gap_note()
    return f"{reason} ({note}: judged on the readings received)" if note else reason


def hot_spot_factor(day: TransformerDay | None) -> Factor:
    """Highest hot spot of the day against the C57.91 limits."""
    name = "hot_spot"
    if (missing := _no_telemetry(name, day)) is not None:
        return missing
    assert day is not None
    if not finite(day.hot_spot_max_c):
        return no_data(name, "no hot-spot temperature in the day's readings")
    t = float(day.hot_spot_max_c)  # type: ignore[arg-type]
    sev = grade(t, HOT_SPOT_LIMITS_C)
    return judged(name, sev, round(t, 1), "°C",
                  _with_gap(f"highest hot spot {t:.1f} °C (limits {HOT_SPOT_LIMITS_C} °C)",
                            day), readings=day.readings)


def thermal_ageing_factor(day: TransformerDay | None, interval_h: float = 1 / 60) -> Factor:
    """The day's equivalent ageing factor and loss of life (C57.91 eqs. 3 and 4).

    F_EQA is taken over the hours the readings cover, so a sensor gap neither dilutes nor
    inflates it; the loss of life is that rate over the whole day.
    """
    name = "thermal_ageing"
    if (missing := _no_telemetry(name, day)) is not None:
        return missing
    assert day is not None
    if not finite(day.aging_hours) or float(day.aging_hours) < 0:  # type: ignore[arg-type]
        return no_data(name, "no usable ageing sum (aging_hours) for the day")
    covered_h = day.readings * interval_h
    f_eqa = float(day.aging_hours) / covered_h  # type: ignore[arg-type]
    lol = loss_of_life_pct(f_eqa, 24.0)
    sev = grade(f_eqa, FEQA_LIMITS)
    return judged(name, sev, round(f_eqa, 4), "",
                  _with_gap(f"equivalent ageing factor {f_eqa:.3f} (1 = ageing at a 110 °C "
                            f"hot spot), loss of life {lol:.4f} % in the day", day),
                  loss_of_life_pct=round(lol, 6), aging_hours=round(float(
                      day.aging_hours), 4), covered_h=round(covered_h, 2))  # type: ignore[arg-type]


def overload_factor(day: TransformerDay | None) -> Factor:
    """Overload hours of the day, weighed by how deep the overload went.

    Time above rated load alone measures use, not harm (C57.91 accepts daily cycles above
    nameplate whose ageing stays normal), so the duration's severity is capped by the
    peak: up to :data:`OVERLOAD_DEPTH_PU` ``[0]`` at most fair, up to ``[1]`` at most poor.
    A peak beyond :data:`EMERGENCY_LOADING_PCT` is critical whatever its duration.
    """
    name = "overload"
    if (missing := _no_telemetry(name, day)) is not None:
        return missing
    assert day is not None
    if not finite(day.overload_minutes):
        return no_data(name, "no overload count for the day")
    minutes = float(day.overload_minutes)  # type: ignore[arg-type]
    peak = float(day.load_pu_max) if finite(day.load_pu_max) else None  # type: ignore[arg-type]
    sev = grade(minutes, OVERLOAD_LIMITS_MIN)
    reason = f"{minutes / 60.0:.2f} h above rated load"
    if peak is None:
        reason += " (peak load unknown: duration only)"
    else:
        reason += f", peak {100 * peak:.0f} % of rated"
        cap = (Severity.FAIR if peak <= OVERLOAD_DEPTH_PU[0] else Severity.POOR
               if peak <= OVERLOAD_DEPTH_PU[1] else Severity.CRITICAL)
        if sev > cap:
            sev = cap
            reason += f" (a shallow overload: at most {cap.label})"
        if 100 * peak > EMERGENCY_LOADING_PCT:
            sev = Severity.CRITICAL
            reason += f" (beyond {EMERGENCY_LOADING_PCT:.0f} % emergency loading)"
    return judged(name, sev, round(minutes / 60.0, 3), "h", _with_gap(reason, day),
                  peak_loading_pct=round(100 * peak, 1) if peak is not None else None)


def modelled_top_oil_rises(hours: Sequence[OilHour]) -> list[tuple[OilHour, float, int]]:
    """The C57.91 top-oil rise each hour should end at, from the load history alone.

    ``Δθ_TO ← Δθ_TO,U + (Δθ_TO − Δθ_TO,U) · exp(−1 h / τ_TO)`` with ``Δθ_TO,U`` the ultimate
    rise at the hour's mean load (Clause 7, R = :data:`LOSS_RATIO`). The model starts at
    steady state on the first hour and again after a missing hour.

    Returns:
        (hour, modelled rise in K, hours since the model (re)started), hours with a load.

    """
    out: list[tuple[OilHour, float, int]] = []
    state: float | None = None
    since = 0
    prev_ms: int | None = None
    decay = math.exp(-1.0 / TAU_TO_H)
    for h in sorted(hours, key=lambda x: x.start_ms):
        if h.load_pu is None or not finite(h.load_pu) or (
                prev_ms is not None and h.start_ms - prev_ms > 3_600_000):
            state = None
        if h.load_pu is None or not finite(h.load_pu):
            prev_ms = None
            continue
        ultimate = expected_top_oil_rise(float(h.load_pu))
        if state is None:
            state, since = ultimate, 0
        else:
            state, since = ultimate + (state - ultimate) * decay, since + 1
        prev_ms = h.start_ms
        out.append((h, state, since))
    return out


def oil_rise_factor(hours: Sequence[OilHour], day_start_ms: int | None = None) -> Factor:
    """Measured top-oil rise over the rise the C57.91 model gives for the load (cooling).

    For each hour: (top oil max − ambient mean) / the modelled rise at the hour's end
    (:func:`modelled_top_oil_rises`). While cooling works the ratio stays near 1 (within
    the spread of R and the hourly means); blocked radiators, failed fans or low oil
    multiply the rise at any load, so the ratio climbs towards that multiple. Hours within
    :data:`OIL_RISE_WARMUP_H` of the model's start, with a modelled rise under
    :data:`MIN_EXPECTED_RISE_K`, or before ``day_start_ms`` (given as load history only)
    are not judged.
    """
    name = "oil_rise"
    if not hours:
        return no_data(name, "no hourly transformer telemetry on this day")
    worst: tuple[float, int] | None = None
    judged_hours = 0
    for h, modelled, since in modelled_top_oil_rises(hours):
        if day_start_ms is not None and h.start_ms < day_start_ms:
            continue
        if since < OIL_RISE_WARMUP_H or modelled < MIN_EXPECTED_RISE_K:
            continue
        if not (finite(h.top_oil_max_c) and finite(h.ambient_avg_c)):
            continue
        judged_hours += 1
        ratio = (float(h.top_oil_max_c) - float(h.ambient_avg_c)) / modelled  # type: ignore[arg-type]
        if worst is None or ratio > worst[0]:
            worst = (ratio, h.start_ms)
    if worst is None:
        return no_data(name, "no hour with load history, top oil and ambient to compare "
                       f"(the model needs {OIL_RISE_WARMUP_H} h of load first)")
    ratio = worst[0]
    return judged(name, grade(ratio, OIL_RISE_LIMITS), round(ratio, 3), "",
                  f"top-oil rise {ratio:.2f}× the C57.91 model's for the load "
                  f"(worst of {judged_hours} h)", hours=judged_hours)
