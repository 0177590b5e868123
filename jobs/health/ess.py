"""Battery bank (ESS) factors: cell voltage gap, cell temperature, SOC behaviour.

Inputs are a bank's daily statistics (``ads_ess_daily``). Limits and their grounds are in
docs/health.md; they are GridLake's engineering limits for Li-ion banks, set below the
BMS's own protective trip (60 °C) so that the index warns before the BMS acts.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.health.factors import Factor, Severity, finite, grade, judged, no_data

CELL_GAP_LIMITS_MV: tuple[float, float, float] = (80.0, 150.0, 300.0)
CELL_TEMP_LIMITS_C: tuple[float, float, float] = (45.0, 50.0, 55.0)
SOC_LOW_PCT = 5.0
SOC_HIGH_PCT = 98.0
READINGS_PER_DAY = 86_400
"""BMS readings a full day has (one a second)."""
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class EssDay:
    """One bank's day (``ads_ess_daily``)."""

    readings: int
    cell_gap_max_mv: float | None
    cell_gap_avg_mv: float | None
    cell_temp_max_c: float | None
    soc_min_pct: float | None
    soc_max_pct: float | None
    soc_avg_pct: float | None
    expected_readings: int = READINGS_PER_DAY

    def gap_note(self) -> str:
        """"" or a note on the sensor gap."""
        if self.expected_readings and self.readings / self.expected_readings >= MIN_COVERAGE:
            return ""
        return f"sensor gap: {self.readings} of {self.expected_readings} readings"


def _missing(name: str, day: EssDay | None) -> Factor | None:
    if day is None or day.readings <= 0:
        return no_data(name, "no BMS readings on this day")
    return None


def _reason(text: str, day: EssDay) -> str:
    note = day.gap_note()
    return f"{text} ({note}: judged on the readings received)" if note else text


def cell_gap_factor(day: EssDay | None) -> Factor:
    """Largest cell voltage gap of the day (imbalance, a weak or failing cell)."""
    name = "cell_gap"
    if (m := _missing(name, day)) is not None:
        return m
    assert day is not None
    if not finite(day.cell_gap_max_mv) or float(day.cell_gap_max_mv) < 0:  # type: ignore[arg-type]
        return no_data(name, "no usable cell voltage gap in the day's readings")
    gap = float(day.cell_gap_max_mv)  # type: ignore[arg-type]
    return judged(name, grade(gap, CELL_GAP_LIMITS_MV), round(gap, 1), "mV",
                  _reason(f"largest cell voltage gap {gap:.0f} mV (limits "
                          f"{CELL_GAP_LIMITS_MV} mV)", day),
                  cell_gap_avg_mv=day.cell_gap_avg_mv)


def cell_temp_factor(day: EssDay | None) -> Factor:
    """Highest cell temperature of the day (thermal runaway precursor, cooling)."""
    name = "cell_temp"
    if (m := _missing(name, day)) is not None:
        return m
    assert day is not None
    if not finite(day.cell_temp_max_c):
        return no_data(name, "no cell temperature in the day's readings")
    t = float(day.cell_temp_max_c)  # type: ignore[arg-type]
    return judged(name, grade(t, CELL_TEMP_LIMITS_C), round(t, 1), "°C",
                  _reason(f"highest cell temperature {t:.1f} °C (limits "
                          f"{CELL_TEMP_LIMITS_C} °C, BMS trip 60 °C)", day))


def soc_factor(day: EssDay | None) -> Factor:
    """SOC behaviour: excursions beyond the operating window, or a SOC that never moves."""
    name = "soc"
    if (m := _missing(name, day)) is not None:
        return m
    assert day is not None
    if not (finite(day.soc_min_pct) and finite(day.soc_max_pct)):
        return no_data(name, "no state of charge in the day's readings")
    lo, hi = float(day.soc_min_pct), float(day.soc_max_pct)  # type: ignore[arg-type]
    problems = []
    if lo < SOC_LOW_PCT:
        problems.append(f"down to {lo:.1f} % (below {SOC_LOW_PCT:.0f} %: deep discharge)")
    if hi > SOC_HIGH_PCT:
        problems.append(f"up to {hi:.1f} % (above {SOC_HIGH_PCT:.0f} %: overcharge)")
    if hi - lo < 0.1 and day.readings > 3600:
        problems.append("SOC did not move all day (stuck estimate or idle bank)")
    sev = Severity.FAIR if problems else Severity.GOOD
    reason = "; ".join(problems) if problems else f"SOC within {lo:.1f}–{hi:.1f} %"
    return judged(name, sev, round(hi - lo, 2), "%", _reason(reason, day),
                  soc_min_pct=lo, soc_max_pct=hi)


def ess_factors(day: EssDay | None) -> list[Factor]:
    """The bank's own factors for one day."""
    return [cell_gap_factor(day), cell_temp_factor(day), soc_factor(day)]
