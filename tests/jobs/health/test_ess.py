"""Battery bank factors."""

from __future__ import annotations

from jobs.health.ess import EssDay, cell_gap_factor, cell_temp_factor, ess_factors, soc_factor
from jobs.health.factors import Severity, Status


def _day(**kw: object) -> EssDay:
    base: dict[str, object] = dict(readings=86_400, cell_gap_max_mv=40.0, cell_gap_avg_mv=25.0,
                                   cell_temp_max_c=32.0, soc_min_pct=30.0, soc_max_pct=70.0,
                                   soc_avg_pct=50.0)
    base.update(kw)
    return EssDay(**base)  # type: ignore[arg-type]


def test_healthy_bank_is_good() -> None:
    assert [f.severity for f in ess_factors(_day())] == [Severity.GOOD] * 3


def test_cell_imbalance_grades_by_gap() -> None:
    assert cell_gap_factor(_day(cell_gap_max_mv=100.0)).severity is Severity.FAIR
    assert cell_gap_factor(_day(cell_gap_max_mv=200.0)).severity is Severity.POOR
    assert cell_gap_factor(_day(cell_gap_max_mv=330.0)).severity is Severity.CRITICAL


def test_cell_temperature_grades_before_the_bms_trip() -> None:
    assert cell_temp_factor(_day(cell_temp_max_c=47.0)).severity is Severity.FAIR
    assert cell_temp_factor(_day(cell_temp_max_c=52.0)).severity is Severity.POOR
    assert cell_temp_factor(_day(cell_temp_max_c=60.0)).severity is Severity.CRITICAL


def test_soc_behaviour() -> None:
    f = soc_factor(_day(soc_min_pct=2.0))
    assert f.severity is Severity.FAIR and "deep discharge" in f.reason
    stuck = soc_factor(_day(soc_min_pct=50.0, soc_max_pct=50.0))
    assert stuck.severity is Severity.FAIR and "did not move" in stuck.reason


def test_bad_input_states_reasons() -> None:
    for f in ess_factors(None):
        assert f.status is Status.NO_DATA and f.reason == "no BMS readings on this day"
    neg = cell_gap_factor(_day(cell_gap_max_mv=-5.0))
    assert neg.status is Status.NO_DATA and "no usable cell voltage gap" in neg.reason
    gap = cell_temp_factor(_day(readings=1000))
    assert gap.severity is Severity.GOOD and "sensor gap: 1000 of 86400" in gap.reason
