"""The job's computation from input frames (no lake): ranking, reruns, bad input, alarms."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from jobs.health.daily import Inputs, assess
from jobs.health.dga import GASES
from lakehouse.contracts.tables import ADS_ASSET_HEALTH
from lakehouse.time import DAY_MS, HOUR_MS

DAY0 = 1_772_323_200_000  # 2026-03-01
DAYS = 3
HEALTHY_GAS = {"h2": 30.0, "ch4": 12.0, "c2h2": 0.3, "c2h4": 6.0, "c2h6": 9.0, "co": 250.0}
# the simulator's dga_thermal growth (ppm/h) and transformer_overload target (1.3–1.6 pu)
THERMAL_RATE = {"h2": 1.0, "ch4": 3.0, "c2h2": 0.05, "c2h4": 6.0, "c2h6": 1.5, "co": 2.0}


def _assets() -> pd.DataFrame:
    rows = [(f"TX-{i:05d}", "transformer", "RGN-01", "SUB-01", "2012-05-01") for i in range(1, 6)]
    rows += [("ESS-01", "ess", "RGN-02", "SUB-02", "2020-01-01"),
             ("ESS-02", "ess", "RGN-02", "SUB-02", "2020-01-01"),
             ("TX-00099", "transformer", "RGN-01", "SUB-01", "2012-05-01")]  # no data at all
    return pd.DataFrame(rows, columns=["device_id", "device_type", "region_id",
                                       "substation_id", "install_date"])


def _tx_daily(tx: str, day: int, overload_min: float = 0.0, peak: float = 0.75,
              hot: float = 85.0, aging: float = 0.5) -> dict[str, object]:
    return {"entity_id": tx, "window_start": day, "readings": 1440, "aging_hours": aging,
            "hot_spot_max_c": hot, "top_oil_max_c": hot - 15.0, "load_pu_max": peak,
            "overload_minutes": overload_min}


def _inputs() -> Inputs:
    """TX-00001..3 healthy; TX-00004 overloaded on day 2; TX-00005 a thermal DGA fault
    from day 2; ESS-02 a cell imbalance on day 3; TX-00099 registered, silent."""
    daily, hourly, dga = [], [], []
    for d in range(DAYS):
        day = DAY0 + d * DAY_MS
        for i in range(1, 6):
            tx = f"TX-{i:05d}"
            if i == 4 and d == 1:
                daily.append(_tx_daily(tx, day, overload_min=120.0, peak=1.45, hot=135.0,
                                       aging=30.0))
            else:
                daily.append(_tx_daily(tx, day))
    for h in range(-12, DAYS * 24):
        for i in range(1, 6):
            hourly.append({"entity_id": f"TX-{i:05d}", "window_start": DAY0 + h * HOUR_MS,
                           "load_pu_avg": 0.7, "top_oil_max_c": 45.0, "ambient_avg_c": 20.0})
    for h in range(-24, DAYS * 24):
        for i in range(1, 6):
            grow = max(0, h - 24) if i == 5 else 0
            dga.append({"device_id": f"TX-{i:05d}", "event_ts": DAY0 + h * HOUR_MS,
                        **{f"{g}_ppm": HEALTHY_GAS[g] + THERMAL_RATE[g] * grow for g in GASES}})
    ess = []
    for d in range(DAYS):
        for b in ("ESS-01", "ESS-02"):
            gap = 320.0 if (b == "ESS-02" and d == 2) else 45.0
            ess.append({"ess_id": b, "day": DAY0 + d * DAY_MS, "readings": 86_400,
                        "cell_gap_max_mv": gap, "cell_gap_avg_mv": 25.0,
                        "cell_temp_max_c": 33.0, "soc_min_pct": 20.0, "soc_max_pct": 85.0,
                        "soc_avg_pct": 50.0})
    return Inputs(assets=_assets(), tx_daily=pd.DataFrame(daily),
                  tx_hourly=pd.DataFrame(hourly), dga=pd.DataFrame(dga),
                  ess_daily=pd.DataFrame(ess))


def _row(out: pd.DataFrame, asset: str, d: int) -> dict[str, Any]:
    hit = out[(out["asset_id"] == asset) & (out["day"] == DAY0 + d * DAY_MS)]
    assert len(hit) == 1
    return {str(k): v for k, v in hit.iloc[0].to_dict().items()}


def test_rows_follow_the_contract() -> None:
    out = assess(_inputs(), DAY0, DAY0 + DAYS * DAY_MS, 123)
    assert list(out.columns) == ADS_ASSET_HEALTH.field_names
    assert len(out) == 8 * DAYS  # every registered asset, every day, data or not
    assert set(out["scoring_version"]) == {"health-v1"}
    assert set(out["dt"]) == {"2026-03-01", "2026-03-02", "2026-03-03"}


def test_faulted_assets_rank_above_healthy_ones() -> None:
    out = assess(_inputs(), DAY0, DAY0 + DAYS * DAY_MS, 123)
    day2 = out[out["day"] == DAY0 + DAY_MS].sort_values("score", na_position="first")
    healthy = day2[day2["asset_id"].isin(["TX-00001", "TX-00002", "TX-00003", "ESS-01"])]
    overloaded = _row(out, "TX-00004", 1)
    assert overloaded["category"] == "critical"  # 2 h above rated, peak 145 %
    assert overloaded["worst_factor"] == "overload"
    assert overloaded["score"] < healthy["score"].min()
    assert set(healthy["category"]) == {"good"}
    # the DGA fault: by day 3, 48 h of thermal growth: C2H4 294 ppm, condition 4, T3
    dga = _row(out, "TX-00005", 2)
    assert dga["category"] == "critical"
    factors = {f["name"]: f for f in json.loads(str(dga["factors"]))}
    assert factors["dga_level"]["value"] == 4
    assert factors["dga_diagnosis"]["value"] == "T3"
    assert factors["dga_rate"]["severity"] == "critical"
    imbalance = _row(out, "ESS-02", 2)
    assert imbalance["category"] == "critical" and imbalance["worst_factor"] == "cell_gap"


def test_worsening_is_flagged_once() -> None:
    out = assess(_inputs(), DAY0, DAY0 + DAYS * DAY_MS, 123)
    tx4 = [_row(out, "TX-00004", d) for d in range(DAYS)]
    assert [r["category"] for r in tx4] == ["good", "critical", "good"]
    assert [r["worsened"] for r in tx4] == [False, True, False]
    assert tx4[1]["previous_category"] == "good"
    # the first day compares with the stored day before the range
    inputs = _inputs()
    inputs.previous = {("transformer", "TX-00001"): "poor", ("ess", "ESS-01"): "good"}
    first = assess(inputs, DAY0, DAY0 + DAY_MS, 123)
    assert _row(first, "TX-00001", 0)["previous_category"] == "poor"
    assert not _row(first, "TX-00001", 0)["worsened"]
    assert sorted(first[first["worsened"]]["asset_id"]) == []


def test_rerun_changes_nothing() -> None:
    a = assess(_inputs(), DAY0, DAY0 + DAYS * DAY_MS, 123)
    b = assess(_inputs(), DAY0, DAY0 + DAYS * DAY_MS, 456)
    pd.testing.assert_frame_equal(a.drop(columns="updated_ts"), b.drop(columns="updated_ts"))
    # a sub-range rerun reproduces the same rows when the day before is known
    mid = assess(_inputs(), DAY0 + DAY_MS, DAY0 + 2 * DAY_MS, 456)
    with_prev = _inputs()
    with_prev.previous = {(r["asset_type"], r["asset_id"]): r["category"]
                          for r in a[a["day"] == DAY0].to_dict("records")}
    mid = assess(with_prev, DAY0 + DAY_MS, DAY0 + 2 * DAY_MS, 456)
    pd.testing.assert_frame_equal(
        mid.drop(columns="updated_ts").reset_index(drop=True),
        a[a["day"] == DAY0 + DAY_MS].drop(columns="updated_ts").reset_index(drop=True))


def test_asset_without_data_is_unknown_with_reasons() -> None:
    out = assess(_inputs(), DAY0, DAY0 + DAY_MS, 123)
    silent = _row(out, "TX-00099", 0)
    assert silent["category"] == "unknown" and pd.isna(silent["score"])
    reasons = {f["name"]: f["reason"] for f in json.loads(str(silent["factors"]))}
    assert reasons["dga_level"] == "no DGA reading in 30 days"
    assert reasons["overload"] == "no transformer telemetry on this day"
    assert reasons["anomaly"].startswith("AnomalyBERT scoring has not run")
    assert reasons["image"].startswith("no image evidence")
    # age is known from the registry: some evidence, but no verdict without a primary factor
    assert silent["evidence_pct"] == pytest.approx(100 * 0.5 / 7.7, abs=0.1)


def test_anomaly_intervals_count_when_scoring_ran() -> None:
    inputs = _inputs()
    inputs.anomalies = pd.DataFrame([{
        "device_id": "ESS-01", "source": "ess_bms", "start_ts": DAY0 + 2 * HOUR_MS,
        "end_ts": DAY0 + 5 * HOUR_MS, "peak_score": 0.93}])
    inputs.scored = pd.DataFrame([{"device_id": "ESS-01", "day": DAY0, "steps": 8640},
                                  {"device_id": "ESS-02", "day": DAY0, "steps": 8640}])
    out = assess(inputs, DAY0, DAY0 + DAY_MS, 123)
    f1 = {f["name"]: f for f in json.loads(str(_row(out, "ESS-01", 0)["factors"]))}
    f2 = {f["name"]: f for f in json.loads(str(_row(out, "ESS-02", 0)["factors"]))}
    tx = {f["name"]: f for f in json.loads(str(_row(out, "TX-00001", 0)["factors"]))}
    assert f1["anomaly"]["value"] == pytest.approx(3.0) and f1["anomaly"]["severity"] == "poor"
    assert f2["anomaly"]["severity"] == "good"
    assert tx["anomaly"]["reason"] == "not scored by AnomalyBERT on this day"


def test_unaligned_range_is_refused() -> None:
    with pytest.raises(ValueError, match="whole UTC days"):
        assess(Inputs(), DAY0 + 1, DAY0 + DAY_MS, 1)
