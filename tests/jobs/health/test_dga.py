"""DGA rules against hand-computed cases (each Duval zone, each IEC ratio code and row)."""

from __future__ import annotations

import math

import pytest

from jobs.health.dga import (
    GasSample,
    dga_factors,
    duval_shares,
    duval_zone,
    gas_conditions,
    iec_diagnosis,
    iec_ratios,
    ratio_codes,
    tdcg_rate,
)
from jobs.health.factors import Severity, Status
from lakehouse.time import DAY_MS, HOUR_MS

DAY0 = 1_772_323_200_000  # 2026-03-01T00:00:00Z


# Duval triangle 1: (CH4, C2H4, C2H2) in ppm → shares → zone, worked out by hand.
@pytest.mark.parametrize(("ch4", "c2h4", "c2h2", "zone", "why"), [
    (99.0, 1.0, 0.0, "PD", "CH4 99 % ≥ 98 %"),
    (98.0, 2.0, 0.0, "PD", "CH4 exactly 98 %: the PD boundary is inclusive"),
    (85.0, 15.0, 0.0, "T1", "C2H2 0 % < 4, C2H4 15 % < 20"),
    (60.0, 38.0, 2.0, "T2", "C2H2 2 % < 4, C2H4 38 % in [20, 50)"),
    (30.0, 60.0, 10.0, "T3", "C2H2 10 % < 15, C2H4 60 % ≥ 50"),
    (40.0, 58.0, 2.0, "T3", "C2H2 2 % < 4, C2H4 58 % ≥ 50"),
    (60.0, 10.0, 30.0, "D1", "C2H2 30 % ≥ 13, C2H4 10 % < 23"),
    (20.0, 30.0, 50.0, "D2", "C2H2 50 % ≥ 13, C2H4 30 % in [23, 40)"),
    (10.0, 55.0, 35.0, "D2", "C2H4 55 % ≥ 40 but C2H2 35 % ≥ 29"),
    (80.0, 12.0, 8.0, "DT", "C2H2 8 % between T1's 4 % and D1's 13 %"),
    (35.0, 45.0, 20.0, "DT", "C2H4 45 % ≥ 40 and C2H2 20 % < 29: between D2 and T3"),
])
def test_duval_zones(ch4: float, c2h4: float, c2h2: float, zone: str, why: str) -> None:
    assert duval_zone(ch4, c2h4, c2h2) == zone, why


def test_duval_shares_are_relative_and_refuse_bad_input() -> None:
    assert duval_shares(20.0, 60.0, 20.0) == pytest.approx((20.0, 60.0, 20.0))
    assert duval_zone(2000.0, 6000.0, 2000.0) == duval_zone(2.0, 6.0, 2.0)  # scale-free
    with pytest.raises(ValueError, match="is 0"):
        duval_shares(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="negative"):
        duval_shares(-1.0, 5.0, 1.0)


# IEC codes: every ratio in each of its four ranges.
@pytest.mark.parametrize(("ratios", "codes"), [
    ((0.05, 0.05, 0.05), (0, 1, 0)),   # < 0.1
    ((0.5, 0.5, 0.5), (1, 0, 0)),      # 0.1 – 1
    ((2.0, 2.0, 2.0), (1, 2, 1)),      # 1 – 3
    ((5.0, 5.0, 5.0), (2, 2, 2)),      # > 3
    ((0.1, 1.0, 3.0), (1, 2, 1)),      # boundaries: 0.1 and 1 open the next range, 3 closes
])
def test_ratio_codes(ratios: tuple[float, float, float], codes: tuple[int, int, int]) -> None:
    assert ratio_codes(*ratios) == codes


# IEC 60599 Table 1, from gases (H2, CH4, C2H2, C2H4, C2H6) with the ratios worked out.
@pytest.mark.parametrize(("gases", "ratios", "fault"), [
    # C2H2/C2H4 = 0/1 = 0, CH4/H2 = 50/1000 = 0.05 < 0.1, C2H4/C2H6 = 1/10 = 0.1 < 0.2
    ((1000.0, 50.0, 0.0, 1.0, 10.0), (0.0, 0.05, 0.1), "PD"),
    # 40/20 = 2 > 1, 30/100 = 0.3 in [0.1, 0.5], 20/10 = 2 > 1 (not > 2: not D2)
    ((100.0, 30.0, 40.0, 20.0, 10.0), (2.0, 0.3, 2.0), "D1"),
    # 60/40 = 1.5 in [0.6, 2.5], 50/100 = 0.5 in [0.1, 1], 40/10 = 4 > 2
    ((100.0, 50.0, 60.0, 40.0, 10.0), (1.5, 0.5, 4.0), "D2"),
    # 0/5 = 0, 40/20 = 2 > 1 (NS), 5/50 = 0.1 < 1
    ((20.0, 40.0, 0.0, 5.0, 50.0), (0.0, 2.0, 0.1), "T1"),
    # 0.5/50 = 0.01 < 0.1, 100/50 = 2 > 1, 50/25 = 2 in [1, 4]
    ((50.0, 100.0, 0.5, 50.0, 25.0), (0.01, 2.0, 2.0), "T2"),
    # 1/200 = 0.005 < 0.2, 100/50 = 2 > 1, 200/20 = 10 > 4
    ((50.0, 100.0, 1.0, 200.0, 20.0), (0.005, 2.0, 10.0), "T3"),
    # 10/20 = 0.5, 50/100 = 0.5, 20/10 = 2: no row of Table 1 (Duval decides)
    ((100.0, 50.0, 10.0, 20.0, 10.0), (0.5, 0.5, 2.0), None),
])
def test_iec_60599_table_1(gases: tuple[float, ...], ratios: tuple[float, float, float],
                           fault: str | None) -> None:
    ppm = dict(zip(("h2", "ch4", "c2h2", "c2h4", "c2h6"), gases, strict=True))
    assert iec_ratios(ppm) == pytest.approx(ratios)
    assert iec_diagnosis(*iec_ratios(ppm)) == fault


def test_iec_ratio_with_zero_denominator() -> None:
    r = iec_ratios({"h2": 0.0, "ch4": 5.0, "c2h2": 0.0, "c2h4": 0.0, "c2h6": 0.0})
    assert r[0] == 0.0 and math.isinf(r[1]) and r[2] == 0.0


def test_c57104_conditions() -> None:
    # H2 150 > 100 (cond 2), C2H2 40 > 35 (cond 4), CO 300 ≤ 350 (cond 1);
    # TDCG = 150 + 60 + 40 + 30 + 20 + 300 = 600 ≤ 720 (cond 1)
    got = gas_conditions({"h2": 150.0, "ch4": 60.0, "c2h2": 40.0, "c2h4": 30.0,
                          "c2h6": 20.0, "co": 300.0})
    assert got == {"h2": 2, "ch4": 1, "c2h2": 4, "c2h4": 1, "c2h6": 1, "co": 1, "tdcg": 1}
    # no TDCG without every gas
    assert "tdcg" not in gas_conditions({"h2": 150.0})


def _healthy(ts: int, extra: float = 0.0) -> GasSample:
    return GasSample(ts, {"h2": 30.0 + extra, "ch4": 12.0, "c2h2": 0.3, "c2h4": 6.0,
                          "c2h6": 9.0, "co": 250.0})


def test_tdcg_rate_is_the_slope_per_day() -> None:
    # H2 + 2 ppm per hour → TDCG + 48 ppm/day
    samples = [_healthy(DAY0 + h * HOUR_MS, 2.0 * h) for h in range(10)]
    assert tdcg_rate(samples) == pytest.approx(48.0)


def test_healthy_oil_is_good_and_normal() -> None:
    samples = [_healthy(DAY0 + h * HOUR_MS) for h in range(72)]
    level, rate, diag = dga_factors(samples, DAY0 + 3 * DAY_MS)
    assert (level.severity, rate.severity, diag.severity) == (Severity.GOOD,) * 3
    assert diag.value == "N"


def test_thermal_fault_growth_is_critical_and_diagnosed_t3() -> None:
    # the simulator's dga_thermal pattern (ppm/h: H2 1, CH4 3, C2H2 0.05, C2H4 6, C2H6 1.5,
    # CO 2) for 48 h on healthy oil: C2H4 = 6 + 288 = 294 > 200 → condition 4
    def at(h: int) -> GasSample:
        return GasSample(DAY0 + h * HOUR_MS, {
            "h2": 30 + 1.0 * h, "ch4": 12 + 3.0 * h, "c2h2": 0.3 + 0.05 * h,
            "c2h4": 6 + 6.0 * h, "c2h6": 9 + 1.5 * h, "co": 250 + 2.0 * h})
    level, rate, diag = dga_factors([at(h) for h in range(49)], DAY0 + 2 * DAY_MS + HOUR_MS)
    assert level.severity is Severity.CRITICAL and level.value == 4
    assert rate.severity is Severity.CRITICAL  # 13.55 ppm/h = 325 ppm/day > 100
    assert rate.value == pytest.approx(13.55 * 24)
    # Duval: CH4 156, C2H4 294, C2H2 2.7 → 34.5 %, 65.0 %, 0.6 % → T3
    assert diag.value == "T3" and diag.severity is Severity.POOR


def test_no_reading_in_30_days_is_stated() -> None:
    old = [_healthy(DAY0)]
    level, rate, diag = dga_factors(old, DAY0 + 40 * DAY_MS)
    assert level.status is Status.NO_DATA and level.reason == "no DGA reading in 30 days"
    assert rate.status is Status.NO_DATA and diag.status is Status.NO_DATA
    assert level.severity is None  # never a silent "good"


def test_missing_and_negative_gases_are_named() -> None:
    bad = GasSample(DAY0, {"h2": 150.0, "ch4": None, "c2h2": -2.0, "c2h4": 6.0,
                           "c2h6": 9.0, "co": float("nan")})
    level, rate, _ = dga_factors([bad], DAY0 + DAY_MS)
    assert level.severity is Severity.FAIR  # H2 150: condition 2, from the usable gases
    assert "missing ch4, co" in level.reason
    assert "negative or out-of-range concentration of c2h2" in level.reason
    assert rate.status is Status.NO_DATA and "0 complete DGA sample" in rate.reason
    allbad = GasSample(DAY0, {g: -1.0 for g in ("h2", "ch4", "c2h2", "c2h4", "c2h6", "co")})
    level, _, diag = dga_factors([allbad], DAY0 + DAY_MS)
    assert level.status is Status.INVALID and "no usable gas" in level.reason
    assert diag.status is Status.NO_DATA


def test_values_beyond_the_monitor_range_are_sensor_faults() -> None:
    # 250 000 ppm is beyond the contract's 100 000 ppm: not a condition-4 gas level
    wild = GasSample(DAY0, {**_healthy(DAY0).ppm, "c2h2": 250_000.0})
    level, _, _ = dga_factors([wild], DAY0 + DAY_MS)
    assert level.severity is Severity.GOOD and level.detail["negative"] == ["c2h2"]
    assert "out-of-range concentration of c2h2" in level.reason


def test_rate_skips_incomplete_samples_and_says_so() -> None:
    samples = [_healthy(DAY0 + h * HOUR_MS) for h in range(24)]
    samples[5] = GasSample(samples[5].ts_ms, {"h2": 30.0})
    _, rate, _ = dga_factors(samples, DAY0 + DAY_MS)
    assert rate.severity is Severity.GOOD
    assert "1 incomplete sample(s) left out" in rate.reason
