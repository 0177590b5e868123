"""The dashboard soak's figures: heap slope, options, live points (no stack, no browser)."""

from __future__ import annotations

import pytest

from lakehouse.time import DAY_MS, dt_of
from ops.bench.dashboard import REGIONS, heap_slope, next_points, soak_figures, soak_options


def _samples(per_min: float, minutes: int, base: float = 20e6) -> list[dict[str, float]]:
    return [{"t_s": m * 60.0, "heap_bytes": base + per_min * m, "nodes": 900.0}
            for m in range(minutes + 1)]


def test_heap_slope_is_bytes_per_minute_after_the_warm_up() -> None:
    samples = _samples(1000.0, 10)
    # the first sample (a settling page) is far off the trend and left out
    samples[0]["heap_bytes"] = 80e6
    assert heap_slope(samples) == pytest.approx(1000.0)
    with_settling = heap_slope(samples, warmup_s=0)
    assert with_settling is not None and with_settling < 0  # the trend would look like shrinking
    assert heap_slope(_samples(0.0, 10), key="nodes") == pytest.approx(0.0)
    assert heap_slope(_samples(5.0, 2)) is None  # 2 samples after the warm-up: no trend


def test_soak_figures_report_slope_growth_and_samples() -> None:
    got = {"errors": [], "durationS": 600, "sampleS": 60, "pointsBefore": 96,
           "pointsAfter": 216, "samples": _samples(2000.0, 10)}
    f = soak_figures(got, points_written=480)
    assert f["samples"] == 11 and f["points_written"] == 480
    assert f["heap_slope_bytes_per_min"] == pytest.approx(2000.0)
    # 2 kB/min is 120 kB an hour: 0.6 % of the settled 20 MB heap
    assert f["heap_growth_pct_per_hour"] == pytest.approx(0.6, abs=0.01)
    assert f["heap_first_bytes"] == 20e6 and f["heap_max_bytes"] == 20e6 + 20000
    assert f["heap_samples"][-1] == [600.0, 20e6 + 20000]
    assert f["chart_points_after"] - f["chart_points_before"] == 120


@pytest.mark.parametrize(("got", "match"), [
    ({"errors": [], "failure": "TimeoutError: waiting for live"}, "failed: TimeoutError"),
    ({"errors": ["TypeError: x is undefined"], "samples": [{"t_s": 0, "heap_bytes": 1}]},
     "uncaught errors"),
    ({"errors": [], "samples": []}, "no samples"),
])
def test_a_failed_browser_run_is_an_error_not_a_figure(got: dict[str, object],
                                                       match: str) -> None:
    with pytest.raises(RuntimeError, match=match):
        soak_figures(got, 0)


def test_live_points_are_the_next_window_of_every_region() -> None:
    start = 20_000 * DAY_MS + 95 * 900_000
    rows = next_points(start, 123)
    assert [r["entity_id"] for r in rows] == [f"R{i + 1}" for i in range(REGIONS)]
    assert {r["point"] for r in rows} == {95}
    assert {r["window_start"] for r in rows} == {start}
    assert {r["dt"] for r in rows} == {dt_of(start)}
    assert next_points(start + 900_000, 1)[0]["point"] == 0  # the next day's first point
    with pytest.raises(ValueError, match="15-minute"):
        next_points(start + 1, 1)


def test_soak_options_default_and_refuse_bad_values() -> None:
    assert soak_options({}) == {"seconds": 600.0, "sample_s": 30.0, "point_s": 5.0}
    assert soak_options({"GRIDLAKE_BENCH_SOAK_S": "3600"})["seconds"] == 3600.0
    with pytest.raises(ValueError, match="GRIDLAKE_BENCH_SOAK_S='ten'"):
        soak_options({"GRIDLAKE_BENCH_SOAK_S": "ten"})
    with pytest.raises(ValueError, match="positive"):
        soak_options({"GRIDLAKE_BENCH_SOAK_POINT_S": "0"})
    with pytest.raises(ValueError, match="shorter"):
        soak_options({"GRIDLAKE_BENCH_SOAK_S": "20", "GRIDLAKE_BENCH_SOAK_SAMPLE_S": "30"})
