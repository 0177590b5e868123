"""Thermal ageing (IEEE C57.91) and the transformer telemetry factors, by hand."""

from __future__ import annotations

import math

import pytest

from jobs.health.ageing import (
    OilHour,
    TransformerDay,
    aging_factor,
    equivalent_aging,
    expected_top_oil_rise,
    hot_spot_factor,
    loss_of_life_pct,
    oil_rise_factor,
    overload_factor,
    thermal_ageing_factor,
)
from jobs.health.factors import Severity, Status
from lakehouse.time import HOUR_MS

DAY0 = 1_772_323_200_000


def test_aging_factor_is_the_c5791_formula() -> None:
    # F_AA = exp(15000/383 − 15000/(θ_H + 273))
    assert aging_factor(110.0) == pytest.approx(1.0)
    # 130 °C: 15000/383 = 39.16449, 15000/403 = 37.22084 → exp(1.94365) = 6.9842
    assert aging_factor(130.0) == pytest.approx(6.9842, abs=1e-4)
    # 80 °C: 15000/353 = 42.49292 → exp(−3.32843) = 0.035849
    assert aging_factor(80.0) == pytest.approx(0.035849, abs=1e-6)
    # 140 °C: the long-time emergency limit ages 17.2× normal
    assert aging_factor(140.0) == pytest.approx(17.1995, abs=1e-4)


def test_overloaded_unit_equivalent_ageing_and_loss_of_life() -> None:
    # 4 h overloaded at a 130 °C hot spot, 20 h at 80 °C:
    # F_EQA = (4 × 6.98418 + 20 × 0.035849) / 24 = (27.93671 + 0.71699) / 24 = 1.19390
    f_eqa = equivalent_aging([130.0, 80.0], [4.0, 20.0])
    assert f_eqa == pytest.approx(1.19390, abs=1e-5)
    # % LoL = 1.19390 × 24 h × 100 / 180 000 h = 0.0159187 %
    assert loss_of_life_pct(f_eqa, 24.0) == pytest.approx(0.0159187, abs=1e-7)
    # the same day as the stream summarises it: aging_hours = Σ F_AA Δt = 28.6537 h over
    # 1440 one-minute readings
    day = TransformerDay(1440, 1440, 4 * aging_factor(130.0) + 20 * aging_factor(80.0),
                         130.0, 95.0, 1.35, 240.0)
    f = thermal_ageing_factor(day)
    assert f.value == pytest.approx(1.1939, abs=1e-4)
    assert f.detail["loss_of_life_pct"] == pytest.approx(0.0159187, abs=1e-6)
    assert f.severity is Severity.FAIR  # 1 < 1.19 ≤ 2
    assert overload_factor(day).severity is Severity.CRITICAL  # 4 h above rated > 90 min
    assert hot_spot_factor(day).severity is Severity.POOR  # 120 < 130 ≤ 140


def test_equivalent_aging_refuses_bad_periods() -> None:
    with pytest.raises(ValueError):
        equivalent_aging([], [])
    with pytest.raises(ValueError):
        equivalent_aging([100.0], [0.0])


def test_sensor_gap_ageing_over_covered_hours_and_stated() -> None:
    # 360 readings (6 h) at F_AA = 2 → aging_hours 12; F_EQA = 12 / 6 = 2, not 12 / 24
    day = TransformerDay(360, 1440, 12.0, 112.0, 90.0, 0.9, 0.0)
    f = thermal_ageing_factor(day)
    assert f.value == pytest.approx(2.0)
    assert "sensor gap: 360 of 1440 readings" in f.reason


def test_no_telemetry_is_no_data_not_good() -> None:
    for fn in (hot_spot_factor, thermal_ageing_factor, overload_factor):
        f = fn(None)
        assert f.status is Status.NO_DATA and f.severity is None
        assert f.reason == "no transformer telemetry on this day"
    missing_hot = TransformerDay(1440, 1440, 1.0, None, 60.0, 0.5, 0.0)
    assert hot_spot_factor(missing_hot).status is Status.NO_DATA


def test_overload_is_weighed_by_depth() -> None:
    # 4 h at up to 118 %: long but shallow → at most fair
    shallow = overload_factor(TransformerDay(1440, 1440, 1.0, 100.0, 80.0, 1.18, 240.0))
    assert shallow.severity is Severity.FAIR and "shallow" in shallow.reason
    # 45 min up to 125 %: poor (≥ 30 min, peak ≤ 1.3 caps at poor)
    assert overload_factor(TransformerDay(1440, 1440, 1.0, 100.0, 80.0, 1.25, 45.0)
                           ).severity is Severity.POOR
    # 2 h at 135 % (the simulator's overload fault): critical
    assert overload_factor(TransformerDay(1440, 1440, 1.0, 100.0, 80.0, 1.35, 120.0)
                           ).severity is Severity.CRITICAL
    assert overload_factor(TransformerDay(1440, 1440, 1.0, 100.0, 80.0, 0.9, 0.0)
                           ).severity is Severity.GOOD


def test_emergency_loading_is_critical_at_once() -> None:
    day = TransformerDay(1440, 1440, 2.0, 100.0, 80.0, 1.6, 10.0)
    f = overload_factor(day)
    assert f.severity is Severity.CRITICAL and "emergency" in f.reason


def test_oil_rise_flags_failed_cooling() -> None:
    # load 0.8 pu all day, R = 5: ultimate rise 55 × ((0.64×5 + 1)/6)^0.8 = 55 × 0.7^0.8
    expected = 55.0 * (4.2 / 6.0) ** 0.8
    assert expected_top_oil_rise(0.8) == pytest.approx(expected)
    normal = [OilHour(DAY0 + h * HOUR_MS, 0.8, 20.0 + 0.9 * expected, 20.0) for h in range(24)]
    f = oil_rise_factor(normal)
    assert f.severity is Severity.GOOD and f.value == pytest.approx(0.9)
    assert f.detail["hours"] == 24 - 6  # the model's first 6 hours are not judged
    hot = [*normal[:12], *(OilHour(DAY0 + h * HOUR_MS, 0.8, 20.0 + 1.7 * expected, 20.0)
                           for h in range(12, 24))]
    f = oil_rise_factor(hot)
    assert f.severity is Severity.CRITICAL and f.value == pytest.approx(1.7)
    # hours before the day only give load history
    assert oil_rise_factor(hot, day_start_ms=DAY0 + 12 * HOUR_MS).value == pytest.approx(1.7)
    assert oil_rise_factor(hot[:12], day_start_ms=DAY0 + 12 * HOUR_MS).status is Status.NO_DATA


def test_oil_rise_follows_the_load_history() -> None:
    # 12 h at 0.8 pu, then 0.2 pu: the oil cools with τ = 3 h. Oil that follows the model
    # is fine; oil that stays hot at the light load (failed cooling) is flagged.
    hi, lo = expected_top_oil_rise(0.8), expected_top_oil_rise(0.2)
    def model(h: int) -> float:  # noqa: E306 - the rise at the end of hour h
        return hi if h < 12 else lo + (hi - lo) * math.exp(-(h - 11) / 3.0)
    loads = [0.8 if h < 12 else 0.2 for h in range(24)]
    follows = [OilHour(DAY0 + h * HOUR_MS, loads[h], 10.0 + model(h), 10.0) for h in range(24)]
    f = oil_rise_factor(follows)
    assert f.severity is Severity.GOOD and f.value == pytest.approx(1.0, abs=1e-6)
    stuck = [OilHour(DAY0 + h * HOUR_MS, loads[h], 10.0 + hi, 10.0) for h in range(24)]
    f = oil_rise_factor(stuck)
    # by hour 23 the model is at lo + (hi − lo)·e^−4; the oil still at hi
    assert f.value == pytest.approx(hi / (lo + (hi - lo) * math.exp(-12 / 3.0)), abs=1e-3)
    assert f.severity is Severity.CRITICAL
    # a gap restarts the model: the 6 hours after it are not judged
    gap = [*follows[:10], *follows[11:]]
    assert oil_rise_factor(gap).detail["hours"] == (10 - 6) + (13 - 6)
