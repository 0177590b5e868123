"""The health index: factors → a 0–100 score, a category and a recommended action.

Scoring version :data:`SCORING_VERSION` (docs/health.md, "Scoring"):

* every judged factor takes ``weight × POINTS[severity]`` off 100;
* a *primary* factor (its own evidence of a fault) also caps the score at the top of its
  severity's band, so one critical gas level is critical whatever else is fine; secondary
  factors (anomaly detections, age, diagnosis detail) only take points off;
* the category is the score's band: good ≥ 80, fair ≥ 60, poor ≥ 40, critical below;
* without a judged *primary* factor there is no score and the category is ``unknown``
  (an age alone is no verdict); factors without evidence are listed with their reason and
  lower ``evidence_pct``, they are never counted as healthy.

Also here: the factors shared by transformers and battery banks (AnomalyBERT intervals,
image defects, age against design life).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from jobs.health.factors import Factor, Severity, grade, judged, no_data
from lakehouse.time import DAY_MS, HOUR_MS, MINUTE_MS

SCORING_VERSION = "health-v1"
"""Changes to weights, limits or rules get a new version; rows keep the one they used."""

POINTS: dict[Severity, float] = {
    Severity.GOOD: 0.0, Severity.FAIR: 10.0, Severity.POOR: 30.0, Severity.CRITICAL: 60.0,
}
BANDS: tuple[tuple[float, str], ...] = ((80.0, "good"), (60.0, "fair"), (40.0, "poor"))
CAPS: dict[Severity, float] = {
    Severity.GOOD: 100.0, Severity.FAIR: 79.0, Severity.POOR: 59.0, Severity.CRITICAL: 39.0,
}
CATEGORIES: tuple[str, ...] = ("good", "fair", "poor", "critical", "unknown")
RANK: dict[str, int] = {"good": 0, "fair": 1, "poor": 2, "critical": 3}
"""Order of the judged categories (``unknown`` is not ranked: it never "worsens")."""

ASSET_TYPES: tuple[str, ...] = ("transformer", "ess")


@dataclass(frozen=True)
class Weight:
    """How much a factor counts, and whether it caps the score."""

    weight: float
    primary: bool


WEIGHTS: dict[str, dict[str, Weight]] = {
    "transformer": {
        "dga_level": Weight(1.0, True), "dga_rate": Weight(1.0, True),
        "dga_diagnosis": Weight(0.5, False), "hot_spot": Weight(1.0, True),
        "thermal_ageing": Weight(0.7, True), "overload": Weight(1.0, True),
        "oil_rise": Weight(1.0, True), "anomaly": Weight(0.5, False),
        "image": Weight(0.5, False), "age": Weight(0.5, False),
    },
    "ess": {
        "cell_gap": Weight(1.0, True), "cell_temp": Weight(1.0, True),
        "soc": Weight(0.5, False), "anomaly": Weight(0.5, False),
        "image": Weight(0.5, False), "age": Weight(0.5, False),
    },
}
"""Factors of each asset type and their weights (scoring version health-v1)."""

ACTIONS: dict[str, str] = {
    "good": "No action: routine monitoring and scheduled maintenance.",
    "fair": "Watch: review the contributing factors, shorten the DGA / inspection interval.",
    "poor": "Plan intervention: inspect within weeks, limit loading, resample oil / check "
            "cells; prepare a repair or replacement plan.",
    "critical": "Act now: inspect immediately, reduce load or take out of service, "
                "confirm with an oil sample / BMS diagnostics.",
    "unknown": "Restore data: no evidence to judge the asset (see the factors' reasons).",
}

DESIGN_LIFE_YEARS: dict[str, float] = {"transformer": 40.0, "ess": 15.0}
AGE_LIMITS: tuple[float, float, float] = (0.75, 1.0, 1.25)
"""Age over design life above which the age factor is fair, poor, critical."""
ANOMALY_LIMITS_H: tuple[float, float, float] = (0.0, 1.0, 6.0)
"""Hours inside AnomalyBERT intervals in a day above which the factor is fair, poor,
critical."""


@dataclass(frozen=True)
class HealthIndex:
    """An asset's health on one day.

    Attributes:
        score: 0–100 (None when no primary factor was judged).
        category: good, fair, poor, critical or unknown.
        factors: Every factor of the asset type, judged or not.
        worst_factor: Name of the factor that took most off (None when nothing did).
        evidence_pct: Share of the asset type's factors (by weight) with evidence.
        action: Recommended action for the category.
        version: Scoring version.

    """

    score: float | None
    category: str
    factors: tuple[Factor, ...]
    worst_factor: str | None
    evidence_pct: float
    action: str
    version: str = SCORING_VERSION

    def factors_json(self) -> str:
        """The factors as a JSON array (stored beside the score)."""
        return json.dumps([f.to_dict() for f in self.factors], sort_keys=True,
                          ensure_ascii=False, default=str)


def category_of(score: float) -> str:
    """Band of a score."""
    for low, name in BANDS:
        if score >= low:
            return name
    return "critical"


def health_index(asset_type: str, factors: Sequence[Factor]) -> HealthIndex:
    """Score an asset's factors.

    Raises:
        ValueError: Unknown asset type, or a factor not of that type (or given twice).

    """
    weights = WEIGHTS.get(asset_type)
    if weights is None:
        raise ValueError(f"unknown asset type {asset_type!r}; one of {', '.join(WEIGHTS)}")
    names = [f.name for f in factors]
    unknown = [n for n in names if n not in weights]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"{asset_type}: unexpected or repeated factors {names}")
    missing = [n for n in weights if n not in names]
    factors = tuple(factors) + tuple(
        no_data(n, "not evaluated by this run") for n in missing)
    total_w = sum(w.weight for w in weights.values())
    judged_fs = [f for f in factors if f.severity is not None]
    evidence = 100.0 * sum(weights[f.name].weight for f in judged_fs) / total_w
    if not any(weights[f.name].primary for f in judged_fs):
        # age or an anomaly detection alone says nothing of the asset's condition: no score
        return HealthIndex(None, "unknown", factors, None, round(evidence, 1),
                           ACTIONS["unknown"])
    penalties = {f.name: weights[f.name].weight * POINTS[f.severity]  # type: ignore[index]
                 for f in judged_fs}
    score = max(0.0, 100.0 - sum(penalties.values()))
    for f in judged_fs:
        if weights[f.name].primary:
            score = min(score, CAPS[f.severity])  # type: ignore[index]
    worst = max(penalties, key=lambda n: penalties[n])  # first of equals: factor order
    category = category_of(score)
    return HealthIndex(round(score, 1), category, factors,
                       worst if penalties[worst] > 0 else None, round(evidence, 1),
                       ACTIONS[category])


def worsened(previous: str | None, current: str) -> bool:
    """Whether ``current`` is worse than ``previous`` (the alarm of the feed).

    Between judged categories: a higher rank. Without a judged previous day (no row, or
    ``unknown``): a first verdict of poor or critical is a finding worth an alarm, a first
    good or fair is not. Becoming ``unknown`` is never a worsening: a gap in the data is
    reported by the factors, not as an alarm about the asset.
    """
    if current not in RANK:
        return False
    if previous is None or previous not in RANK:
        return RANK[current] >= RANK["poor"]
    return RANK[current] > RANK[previous]


# ------------------------------------------------------------------ shared factors
@dataclass(frozen=True)
class AnomalyInterval:
    """An AnomalyBERT interval of the asset (``ads_equipment_anomaly``)."""

    start_ms: int
    end_ms: int
    peak_score: float
    source: str


def anomaly_factor(intervals: Sequence[AnomalyInterval] | None, scored_steps: int | None,
                   day_start_ms: int) -> Factor:
    """Time inside AnomalyBERT anomaly intervals during the day.

    Args:
        intervals: The asset's intervals overlapping the day; None when the anomaly table
            does not exist (scoring never ran).
        scored_steps: Steps of the asset scored during the day (None: unknown).
        day_start_ms: Start of the day.

    """
    name = "anomaly"
    if intervals is None:
        return no_data(name, "AnomalyBERT scoring has not run (no ads_equipment_anomaly)")
    day_end = day_start_ms + DAY_MS
    inside = sum(max(0, min(i.end_ms, day_end) - max(i.start_ms, day_start_ms))
                 for i in intervals)
    if not intervals and not scored_steps:
        return no_data(name, "not scored by AnomalyBERT on this day")
    hours = inside / HOUR_MS
    peak = max((i.peak_score for i in intervals), default=None)
    sev = grade(hours, ANOMALY_LIMITS_H) if inside >= MINUTE_MS or intervals else Severity.GOOD
    reason = (f"{len(intervals)} anomaly interval(s), {hours:.2f} h in the day, peak score "
              f"{peak:.3f}" if intervals else f"no anomaly interval in {scored_steps} scored "
              "steps")
    return judged(name, sev, round(hours, 3), "h", reason, intervals=len(intervals),
                  peak_score=peak, sources=sorted({i.source for i in intervals}))


@dataclass(frozen=True)
class ImageDefect:
    """A defect found on an inspection image (the equipment-images issue)."""

    kind: str
    severity: Severity
    image_ts_ms: int


IMAGE_TABLE_ABSENT = ("no image evidence: the lake has no equipment image table yet "
                      "(equipment-images issue not delivered)")


def image_factor(defects: Sequence[ImageDefect] | None,
                 absent_reason: str = IMAGE_TABLE_ABSENT) -> Factor:
    """Defects seen on inspection images; ``None``: no image evidence, and why."""
    name = "image"
    if defects is None:
        return no_data(name, absent_reason)
    if not defects:
        return judged(name, Severity.GOOD, 0, "defects", "no defect on the inspection images")
    worst = max(defects, key=lambda d: d.severity)
    return judged(name, worst.severity, len(defects), "defects",
                  f"{len(defects)} defect(s) on inspection images, worst: {worst.kind}",
                  kinds=sorted({d.kind for d in defects}))


def age_factor(asset_type: str, install_date: str | None, day: date) -> Factor:
    """Age on ``day`` against the asset type's design life."""
    name = "age"
    life = DESIGN_LIFE_YEARS[asset_type]
    if not install_date:
        return no_data(name, "no install_date in dim_device")
    try:
        installed = date.fromisoformat(install_date)
    except ValueError:
        return no_data(name, f"install_date {install_date!r} is not a yyyy-MM-dd date")
    years = (day - installed).days / 365.25
    if years < 0:
        return no_data(name, f"install_date {install_date} is after the day judged")
    ratio = years / life
    return judged(name, grade(ratio, AGE_LIMITS), round(years, 2), "years",
                  f"{years:.1f} years of a {life:.0f}-year design life ({100 * ratio:.0f} %)",
                  design_life_years=life, install_date=install_date)
