"""The health index: scoring, categories, caps, missing evidence, shared factors."""

from __future__ import annotations

import json
from datetime import date

import pytest

from jobs.health.factors import Factor, Severity, Status, judged, no_data
from jobs.health.index import (
    ACTIONS,
    SCORING_VERSION,
    WEIGHTS,
    AnomalyInterval,
    ImageDefect,
    age_factor,
    anomaly_factor,
    health_index,
    image_factor,
    worsened,
)
from lakehouse.time import DAY_MS, HOUR_MS

DAY0 = 1_772_323_200_000


def _all(asset: str, sev: Severity = Severity.GOOD, **override: Severity) -> list[Factor]:
    return [judged(n, override.get(n, sev), 0.0, "", "test") for n in WEIGHTS[asset]]


def test_all_good_is_100_good() -> None:
    hi = health_index("transformer", _all("transformer"))
    assert (hi.score, hi.category, hi.worst_factor) == (100.0, "good", None)
    assert hi.evidence_pct == 100.0 and hi.version == SCORING_VERSION
    assert hi.action == ACTIONS["good"]


def test_one_primary_factor_caps_the_category() -> None:
    # 100 − 60 = 40 would be poor; a critical primary factor caps at 39: critical
    hi = health_index("transformer", _all("transformer", dga_level=Severity.CRITICAL))
    assert (hi.score, hi.category, hi.worst_factor) == (39.0, "critical", "dga_level")
    # poor: 100 − 30 = 70 → capped 59
    hi = health_index("ess", _all("ess", cell_gap=Severity.POOR))
    assert (hi.score, hi.category) == (59.0, "poor")


def test_secondary_factors_only_take_points() -> None:
    # anomaly critical: 0.5 × 60 = 30 off → 70, fair; not capped to critical
    hi = health_index("transformer", _all("transformer", anomaly=Severity.CRITICAL))
    assert (hi.score, hi.category) == (70.0, "fair")
    # two poor primaries: 100 − 60 = 40 → min(40, 59) = 40, poor
    hi = health_index("transformer", _all("transformer", overload=Severity.POOR,
                                          hot_spot=Severity.POOR))
    assert (hi.score, hi.category) == (40.0, "poor")


def test_missing_evidence_is_never_healthy() -> None:
    hi = health_index("transformer", [no_data(n, "nothing") for n in WEIGHTS["transformer"]])
    assert hi.score is None and hi.category == "unknown" and hi.evidence_pct == 0.0
    assert hi.action == ACTIONS["unknown"]
    # only secondary evidence (age, an anomaly detection): still no verdict
    hi = health_index("ess", [judged("age", Severity.GOOD, 3.0, "years", "young")])
    assert hi.score is None and hi.category == "unknown" and hi.evidence_pct > 0
    # partial evidence: scored on what there is, the gap shown in evidence_pct and reasons
    fs = [judged("overload", Severity.GOOD, 0.0, "h", "ok"),
          no_data("dga_level", "no DGA reading in 30 days")]
    hi = health_index("transformer", fs)
    # 1 of the type's 7.7 weight has evidence
    assert hi.category == "good" and hi.evidence_pct == pytest.approx(100 / 7.7, abs=0.1)
    stored = {f["name"]: f for f in json.loads(hi.factors_json())}
    assert stored["dga_level"]["reason"] == "no DGA reading in 30 days"
    assert stored["dga_level"]["severity"] is None
    assert stored["oil_rise"]["status"] == "no_data"  # every factor listed, with a reason


def test_unknown_types_and_factors_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown asset type"):
        health_index("meter", [])
    with pytest.raises(ValueError, match="unexpected"):
        health_index("ess", [judged("dga_level", Severity.GOOD, 1, "", "x")])


def test_worsened() -> None:
    assert worsened("good", "poor") and worsened("poor", "critical")
    assert not worsened("poor", "fair") and not worsened("critical", "critical")
    assert not worsened("good", "unknown") and not worsened(None, "unknown")
    # no judged day before: a first poor/critical verdict alarms, a first good/fair does not
    assert worsened(None, "critical") and worsened("unknown", "poor")
    assert not worsened(None, "fair") and not worsened("unknown", "good")


def test_anomaly_factor() -> None:
    assert anomaly_factor(None, None, DAY0).status is Status.NO_DATA
    assert "not scored" in anomaly_factor([], 0, DAY0).reason
    assert anomaly_factor([], 1440, DAY0).severity is Severity.GOOD
    # 23:00 → 02:00 next day: 1 h inside the day → fair (> 0, not > 1 h)
    iv = AnomalyInterval(DAY0 + 23 * HOUR_MS, DAY0 + DAY_MS + 2 * HOUR_MS, 0.97, "ess_bms")
    f = anomaly_factor([iv], 1440, DAY0)
    assert f.value == pytest.approx(1.0) and f.severity is Severity.FAIR
    long = AnomalyInterval(DAY0, DAY0 + 8 * HOUR_MS, 0.9, "ess_bms")
    assert anomaly_factor([long], 1440, DAY0).severity is Severity.CRITICAL


def test_image_factor_without_images_says_why() -> None:
    f = image_factor(None)
    assert f.status is Status.NO_DATA and f.reason.startswith("no image evidence")
    f = image_factor([ImageDefect("oil leak", Severity.POOR, DAY0)])
    assert f.severity is Severity.POOR and "oil leak" in f.reason


def test_age_factor() -> None:
    f = age_factor("transformer", "2000-01-01", date(2026, 1, 1))
    assert f.value == pytest.approx(26.0, abs=0.01) and f.severity is Severity.GOOD  # 65 %
    assert age_factor("ess", "2010-01-01", date(2026, 1, 1)).severity is Severity.POOR
    assert age_factor("ess", None, date(2026, 1, 1)).reason == "no install_date in dim_device"
    assert "not a yyyy-MM-dd" in age_factor("ess", "soon", date(2026, 1, 1)).reason
