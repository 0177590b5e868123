"""The lakehouse scenario and its pandas oracle, checked against hand-computed facts.

No services: these tests guard the oracle the end-to-end lakehouse test compares the
pipeline with, so that a wrong expectation cannot hide (or invent) a pipeline bug.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pandas as pd
import pytest

from lakehouse.contracts.tables import ADS_TABLES, DIM_DEVICE, DWD_TABLES, DWS_TABLES, TABLES
from tests.jobs.streaming import lakehouse_data as ld
from tests.jobs.streaming import lakehouse_oracle as lo

INGEST_DT = "2026-06-01"
MT = "meter.readings"
Q = ld.QUARTER_MS


@pytest.fixture(scope="module")
def scn() -> ld.Scenario:
    return ld.scenario()


@pytest.fixture(scope="module")
def exp(scn: ld.Scenario) -> dict[str, pd.DataFrame]:
    return lo.expected(scn, ingest_dt=INGEST_DT)


def payloads(scn: ld.Scenario, topic: str, device: str | None = None) -> list[dict[str, Any]]:
    """Valid payloads of ``topic`` (optionally one device), in publish order."""
    contract = ld.CONTRACTS[topic]
    out = []
    for _phase, (t, _k, value) in scn.messages:
        if t == topic and ld.valid(t, value):
            p = json.loads(value)
            if device is None or p[contract.key_field] == device:
                out.append(p)
    return out


def reading(scn: ld.Scenario, device: str, ts: int) -> dict[str, Any]:
    """The first published valid meter reading of ``device`` at ``ts``."""
    return next(p for p in payloads(scn, MT, device) if p["ts"] == ts)


def row(df: pd.DataFrame, **key: Any) -> dict[str, Any]:
    hit = df
    for k, v in key.items():
        hit = hit[hit[k] == v]
    assert len(hit) == 1, (key, len(hit))
    return dict(hit.iloc[0])


def has(df: pd.DataFrame, **key: Any) -> bool:
    hit = df
    for k, v in key.items():
        hit = hit[hit[k] == v]
    return len(hit) > 0


# --- the scenario ---------------------------------------------------------------------

def test_scenario_is_small_deterministic_and_configured(scn: ld.Scenario) -> None:
    assert len(scn.phase1) + len(scn.phase2) < 2500
    assert scn.watermark_delay_ms == 300_000
    assert scn.allowed_lateness_ms == 3_600_000
    assert ld.scenario(7) == scn
    other = ld.scenario(8)
    assert other.phase1 != scn.phase1
    assert [(d.name, d.device_id, d.ts) for d in other.defects] == \
        [(d.name, d.device_id, d.ts) for d in scn.defects]
    topics = {t for t, _k, _v in scn.phase1}
    assert topics == set(ld.CONTRACTS)
    days = {lo._dt(json.loads(v)["ts"]) for t, _k, v in scn.phase1 if t == MT and ld.valid(t, v)}
    assert days == {"2026-03-01", "2026-03-02", "2026-03-03"}


def test_only_the_planted_malformed_messages_are_invalid(scn: ld.Scenario) -> None:
    invalid = [(t, k) for _p, (t, k, v) in scn.messages if not ld.valid(t, v)]
    planted = scn.defect("malformed")
    assert len(invalid) == len(planted) == 6
    assert Counter(t for t, _k in invalid) == Counter({MT: 4, "ess.bms": 2})
    assert lo.quarantine_count(scn) == 6


def test_ods_counts_plus_quarantine_is_everything_published(scn: ld.Scenario) -> None:
    counts = lo.ods_counts(scn)
    assert sum(counts.values()) + lo.quarantine_count(scn) == len(scn.phase1) + len(scn.phase2)
    assert counts["ods_meter_reading"] == len(payloads(scn, MT))
    assert counts["ods_device_registry"] == 19  # 16 devices, M-3's move, a duplicate, a re-send
    assert counts["ods_sim_label"] == 2


def test_phase1_is_never_late(scn: ld.Scenario) -> None:
    newest: dict[str, int] = {}
    for topic, _k, value in scn.phase1:
        if not ld.valid(topic, value):
            continue
        c = ld.CONTRACTS[topic]
        ts = json.loads(value)[c.event_time_field]
        assert ts >= newest.get(topic, ts) - scn.watermark_delay_ms, (topic, ts)
        newest[topic] = max(ts, newest.get(topic, ts))


def test_phase2_lateness_is_as_planted(scn: ld.Scenario) -> None:
    newest: dict[str, int] = {}
    seen = set()
    for topic, _k, value in scn.phase1:
        if ld.valid(topic, value):
            c = ld.CONTRACTS[topic]
            p = json.loads(value)
            newest[topic] = max(p[c.event_time_field], newest.get(topic, 0))
            seen.add((topic, p[c.key_field], p[c.event_time_field]))
    assert len(scn.phase2) == 4
    for d in scn.defects:
        if d.phase != 2:
            continue
        behind = newest[d.topic] - d.ts
        assert (d.topic, d.device_id, d.ts) not in seen
        if d.name == "late":
            assert 30 * 60_000 <= behind <= 50 * 60_000
        else:
            assert behind > scn.watermark_delay_ms + scn.allowed_lateness_ms


# --- the oracle's frames --------------------------------------------------------------

def test_frames_follow_the_contracts(exp: dict[str, pd.DataFrame]) -> None:
    wanted = [DIM_DEVICE, *DWD_TABLES.values(), *(t for t in TABLES if t.name ==
                                                 "dwd_quality_daily"), *DWS_TABLES, *ADS_TABLES]
    assert set(exp) == {t.name for t in wanted}
    for t in wanted:
        df = exp[t.name]
        assert list(df.columns) == [c for c in t.field_names if c not in lo.EXCLUDED], t.name
        assert not df.duplicated(list(t.record_key)).any(), t.name
        assert len(df) > 0, t.name
        assert df.equals(df.sort_values(list(t.record_key)).reset_index(drop=True)), t.name


def test_flagged_rows_are_exactly_the_planted_defects(exp: dict[str, pd.DataFrame]) -> None:
    flagged = set()
    for t in DWD_TABLES.values():
        df = exp[t.name]
        df = df[df["quality_flags"] != ""]
        flagged |= set(zip(df["device_id"], df["event_ts"], df["quality_flags"], strict=True))
    assert flagged == {
        (*ld.EXACT_DUP, "duplicate"),
        (*ld.ESS_TRIPLICATE, "duplicate"),
        (*ld.DIFF_DUP, "duplicate"),
        (*ld.SPIKE_VOLTAGE, "range,spike"),
        (*ld.SPIKE_POWER, "spike"),
        (*ld.RANGE, "range"),
        *(("M-7", ts, "stuck") for ts in ld.STUCK[1][1:]),
        ("M-2", ld.LATE_METER[1][0], "late,gap"),
        ("M-2", ld.LATE_METER[1][1], "late"),
        (*ld.LATE_FEEDER, "late"),
        (*ld.TOO_LATE, "too_late,gap"),
        *(("M-99", ts, "unknown_device") for ts in ld.UNKNOWN[1]),
        ("ESS-1", ld.ESS_DISCHARGE, "gap"),  # the second 1 Hz burst starts after a pause
    }


def test_exact_duplicate(scn: ld.Scenario, exp: dict[str, pd.DataFrame]) -> None:
    r = row(exp["dwd_meter_reading"], device_id="M-1", event_ts=ld.EXACT_DUP[1])
    assert r["copies"] == 2 and r["flag_duplicate"] and r["usable"]
    assert sum(1 for p in payloads(scn, MT, "M-1") if p["ts"] == ld.EXACT_DUP[1]) == 2
    a = row(exp["ads_meter_energy_15min"], device_id="M-1", window_start=ld.EXACT_DUP[1])
    assert a["readings"] == 1
    e = row(exp["dwd_ess_bms"], device_id=ld.ESS_TRIPLICATE[0], event_ts=ld.ESS_TRIPLICATE[1])
    assert e["copies"] == 3 and e["quality_flags"] == "duplicate"
    minute = ld.ESS_TRIPLICATE[1] - ld.ESS_TRIPLICATE[1] % 60_000
    assert row(exp["dws_ess"], grain="1min", window_start=minute)["readings"] == 60
    q = exp["dwd_quality_daily"]
    ess = row(q, dt="2026-03-01", source="ess_bms", region_id="R1")
    assert (ess["received"], ess["records"], ess["duplicate"]) == (602, 600, 2)


def test_differing_duplicate_keeps_the_first_copy(scn: ld.Scenario,
                                                  exp: dict[str, pd.DataFrame]) -> None:
    first, second = (p for p in payloads(scn, MT, "M-2") if p["ts"] == ld.DIFF_DUP[1])
    assert first["voltage_v"] != second["voltage_v"]
    r = row(exp["dwd_meter_reading"], device_id="M-2", event_ts=ld.DIFF_DUP[1])
    assert r["copies"] == 2 and r["quality_flags"] == "duplicate"
    assert r["voltage_v"] == first["voltage_v"]
    assert r["energy_import_kwh"] == first["energy_import_kwh"]
    a = row(exp["ads_meter_energy_15min"], device_id="M-2", window_start=ld.DIFF_DUP[1])
    assert a["register_last_kwh"] == first["energy_import_kwh"]


def test_registry_duplicate_is_ignored_and_move_is_versioned(
        scn: ld.Scenario, exp: dict[str, pd.DataFrame]) -> None:
    dim = exp["dim_device"]
    m1_copies = [p for p in payloads(scn, "device.registry", "M-1")]
    assert len(m1_copies) == 2 and m1_copies[0]["serial_number"] != m1_copies[1]["serial_number"]
    m1 = row(dim, device_id="M-1")
    assert m1["serial_number"] == m1_copies[0]["serial_number"] and m1["is_current"]
    v1 = row(dim, device_id="M-3", version=1)
    v2 = row(dim, device_id="M-3", version=2)
    assert v1["valid_to"] == ld.T_MOVE == v2["valid_from"] and not v1["is_current"]
    assert pd.isna(v2["valid_to"]) and v2["is_current"] and v2["change_type"] == "move"
    m2 = row(dim, device_id="M-2")  # its re-sent version 1 is a copy, not a version
    assert m2["version"] == 1 and m2["valid_from"] == ld.T0 and m2["is_current"]
    assert set(exp["dwd_meter_reading"].query("device_id == 'M-2'")["dim_version"]) == {1}
    assert len(dim) == 17


def test_moved_meter_follows_its_dim_version(exp: dict[str, pd.DataFrame]) -> None:
    m3 = exp["dwd_meter_reading"][lambda d: d["device_id"] == "M-3"]
    before, after = m3[m3["event_ts"] < ld.T_MOVE], m3[m3["event_ts"] >= ld.T_MOVE]
    assert set(before["feeder_id"]) == {"F1"} and set(before["region_id"]) == {"R1"}
    assert set(before["transformer_id"]) == {"TX-1"} and set(before["dim_version"]) == {1}
    assert set(after["feeder_id"]) == {"F2"} and set(after["substation_id"]) == {"SUB-2"}
    assert set(after["transformer_id"]) == {"TX-3"} and set(after["dim_version"]) == {2}
    assert ld.T_MOVE in set(after["event_ts"])  # the boundary reading joins version 2
    load = exp["dws_load"]
    at_move = dict(entity_type="feeder", grain="15min", window_start=ld.T_MOVE)
    before_move = {**at_move, "window_start": ld.T_MOVE - Q}
    assert row(load, entity_id="F2", **at_move)["devices"] == 2  # M-3, M-7
    assert row(load, entity_id="F2", **before_move)["devices"] == 1  # M-7
    assert row(load, entity_id="F1", **at_move)["devices"] == 4  # M-1, M-2, M-4, M-5
    assert row(load, entity_id="F1", **before_move)["devices"] == 5


def test_spikes_are_flagged_and_left_out(exp: dict[str, pd.DataFrame]) -> None:
    dwd, ads = exp["dwd_meter_reading"], exp["ads_meter_energy_15min"]
    v = row(dwd, device_id="M-1", event_ts=ld.SPIKE_VOLTAGE[1])
    assert v["flag_spike"] and v["flag_range"] and not v["usable"] and v["voltage_v"] > 2000
    p = row(dwd, device_id="M-4", event_ts=ld.SPIKE_POWER[1])
    assert p["quality_flags"] == "spike" and not p["usable"]
    for dev, ts in (ld.SPIKE_VOLTAGE, ld.SPIKE_POWER):
        assert not has(ads, device_id=dev, window_start=ts)
        nxt = row(ads, device_id=dev, window_start=ts + Q)
        assert nxt["baseline"] == "first_reading" and nxt["energy_kwh"] == 0.0
        after = row(dwd, device_id=dev, event_ts=ts + Q)
        assert after["quality_flags"] == ""  # the spike row is its prev, not a new spike


def test_out_of_range_transformer_reading(exp: dict[str, pd.DataFrame]) -> None:
    r = row(exp["dwd_transformer_telemetry"], device_id=ld.RANGE[0], event_ts=ld.RANGE[1])
    assert r["load_pu"] == 7.0 and r["quality_flags"] == "range" and not r["usable"]
    assert r["transformer_id"] == "TX-1" and r["feeder_id"] == "F1"
    day = row(exp["ads_transformer_daily"], transformer_id="TX-1", dt="2026-03-02")
    assert day["readings"] == 29 and day["loading_rate_pct"] < 100
    assert not has(exp["dws_transformer"], entity_id="TX-1", grain="1min",
                   window_start=ld.RANGE[1])


def test_stuck_meter(exp: dict[str, pd.DataFrame]) -> None:
    dwd = exp["dwd_meter_reading"]
    first, *rest = ld.STUCK[1]
    assert row(dwd, device_id="M-7", event_ts=first)["quality_flags"] == ""
    for ts in rest:
        r = row(dwd, device_id="M-7", event_ts=ts)
        assert r["flag_stuck"] and r["usable"]
        assert row(exp["ads_meter_energy_15min"], device_id="M-7", window_start=ts)[
            "energy_kwh"] == 0.0


def test_gap_partly_filled_by_late_readings(scn: ld.Scenario,
                                            exp: dict[str, pd.DataFrame]) -> None:
    dwd, ads = exp["dwd_meter_reading"], exp["ads_meter_energy_15min"]
    missing, late1, late2 = ld.GAP[1]
    assert not has(dwd, device_id="M-2", event_ts=missing)
    r1 = row(dwd, device_id="M-2", event_ts=late1)
    assert r1["flag_late"] and r1["flag_gap"] and r1["usable"]
    r2 = row(dwd, device_id="M-2", event_ts=late2)
    assert r2["quality_flags"] == "late" and r2["usable"]
    assert row(dwd, device_id="M-2", event_ts=late2 + Q)["quality_flags"] == ""
    a1 = row(ads, device_id="M-2", window_start=late1)
    assert a1["baseline"] == "first_reading" and a1["energy_kwh"] == 0.0
    a2 = row(ads, device_id="M-2", window_start=late2)
    assert a2["baseline"] == "previous_interval"
    assert a2["energy_kwh"] == pytest.approx(
        reading(scn, "M-2", late2)["energy_import_kwh"]
        - reading(scn, "M-2", late1)["energy_import_kwh"])
    assert row(exp["ads_load_daily"], entity_type="meter", entity_id="M-2",
               dt="2026-03-03")["points"] == 15


def test_late_feeder_reading_fills_its_hole(exp: dict[str, pd.DataFrame]) -> None:
    dwd = exp["dwd_feeder_scada"]
    dev, ts = ld.LATE_FEEDER
    r = row(dwd, device_id=dev, event_ts=ts)
    assert r["quality_flags"] == "late" and r["usable"] and r["feeder_id"] == "F1"
    assert row(dwd, device_id=dev, event_ts=ts + 60_000)["quality_flags"] == ""
    assert row(exp["dws_feeder"], entity_id="F1", grain="15min",
               window_start=ts - ts % Q)["readings"] == 15


def test_too_late_reading_is_kept_but_not_summarised(scn: ld.Scenario,
                                                     exp: dict[str, pd.DataFrame]) -> None:
    dev, ts = ld.TOO_LATE
    r = row(exp["dwd_meter_reading"], device_id=dev, event_ts=ts)
    assert r["flag_too_late"] and not r["flag_late"] and not r["usable"]
    k = ts - ts % Q
    a = row(exp["ads_meter_energy_15min"], device_id=dev, window_start=k)
    assert a["readings"] == 1
    assert a["register_last_kwh"] == reading(scn, dev, k)["energy_import_kwh"]
    assert reading(scn, dev, ts)["energy_import_kwh"] > a["register_last_kwh"]


def test_unknown_device(exp: dict[str, pd.DataFrame]) -> None:
    dwd = exp["dwd_meter_reading"]
    rows = dwd[dwd["device_id"] == "M-99"]
    assert len(rows) == 4 and rows["flag_unknown_device"].all() and rows["usable"].all()
    assert rows["region_id"].isna().all() and rows["feeder_id"].isna().all()
    assert rows["dim_version"].isna().all()
    load = exp["dws_load"]
    assert has(load, entity_type="meter", entity_id="M-99", grain="1d")
    day = row(load, entity_type="region", entity_id="R1", grain="15min",
              window_start=ld.UNKNOWN[1][1])
    assert day["devices"] == 5  # M-99 is not in any region
    q = row(exp["dwd_quality_daily"], dt="2026-03-02", source="meter_reading",
            region_id="unknown")
    assert (q["records"], q["unknown_device"], q["clean"]) == (4, 4, 0)


def test_reporting_device_fills_its_own_hierarchy_column(
        exp: dict[str, pd.DataFrame]) -> None:
    dim = exp["dim_device"]
    assert row(dim, device_id="F1")["feeder_id"] is None
    assert row(dim, device_id="TX-2")["transformer_id"] is None
    assert row(dim, device_id="SUB-2")["substation_id"] is None
    for table, col in (("dwd_feeder_scada", "feeder_id"),
                       ("dwd_transformer_telemetry", "transformer_id"),
                       ("dwd_transformer_dga", "transformer_id"),
                       ("dwd_substation_scada", "substation_id")):
        df = exp[table]
        assert (df[col] == df["device_id"]).all(), table
    sub = exp["dwd_substation_scada"]
    assert sub["feeder_id"].isna().all() and set(sub["region_id"]) == {"R1", "R2"}
    tx = row(exp["dwd_transformer_telemetry"], device_id="TX-3", event_ts=ld.FAST_START)
    assert (tx["region_id"], tx["substation_id"], tx["feeder_id"]) == ("R2", "SUB-2", "F2")
    ess = exp["dwd_ess_bms"]
    assert set(ess["substation_id"]) == {"SUB-1"} and ess["transformer_id"].isna().all()


def test_out_of_order_reading_counts_normally(exp: dict[str, pd.DataFrame]) -> None:
    dev, ts = ld.OUT_OF_ORDER
    assert row(exp["dwd_meter_reading"], device_id=dev, event_ts=ts)["quality_flags"] == ""
    assert row(exp["ads_meter_energy_15min"], device_id=dev,
               window_start=ts - ts % Q)["readings"] == 15


def test_quality_counts_add_up(scn: ld.Scenario, exp: dict[str, pd.DataFrame]) -> None:
    q = exp["dwd_quality_daily"]
    counts = lo.ods_counts(scn)
    for name, t in DWD_TABLES.items():
        src = q[q["source"] == name]
        assert src["received"].sum() == counts[f"ods_{name}"], name
        assert src["records"].sum() == len(exp[t.name]), name
    meters = q[q["source"] == "meter_reading"]
    assert meters["duplicate"].sum() == 2
    assert (meters["late"].sum(), meters["too_late"].sum(), meters["stuck"].sum()) == (2, 1, 3)
    quarantine = q[q["quarantined"] > 0]
    assert set(quarantine["dt"]) == {INGEST_DT} and set(quarantine["region_id"]) == {"unknown"}
    assert dict(zip(quarantine["source"], quarantine["quarantined"], strict=True)) == \
        {"meter_reading": 4, "ess_bms": 2}
    card = exp["ads_quality_scorecard"]
    r1 = row(card, region_id="R1", dt="2026-03-02")
    day = q[(q["region_id"] == "R1") & (q["dt"] == "2026-03-02")]
    assert r1["score_pct"] == pytest.approx(day["clean"].sum() / day["received"].sum() * 100)
    assert r1["day"] == lo._day_ms("2026-03-02")
    assert row(card, region_id="unknown", dt=INGEST_DT)["quarantined"] == 6


def test_hand_computed_15min_energy(scn: ld.Scenario, exp: dict[str, pd.DataFrame]) -> None:
    k = ld.at(2, 6, 15)
    e = reading(scn, "M-3", k)["energy_import_kwh"] - reading(scn, "M-3", k - Q)[
        "energy_import_kwh"]
    a = row(exp["ads_meter_energy_15min"], device_id="M-3", window_start=k)
    assert a["energy_kwh"] == pytest.approx(e) and a["baseline"] == "previous_interval"
    assert a["window_end"] == k + Q and a["dt"] == "2026-03-02"
    # The first interval has no previous one: last − first of a single reading.
    first = row(exp["ads_meter_energy_15min"], device_id="M-3", window_start=ld.T0)
    assert first["baseline"] == "first_reading" and first["energy_kwh"] == 0.0
    # The 60 s meter: 15 readings per interval, previous interval's last register.
    k6 = ld.at(2, 0, 0)
    regs = {p["ts"]: p["energy_import_kwh"] for p in payloads(scn, MT, "M-6")}
    m6 = row(exp["ads_meter_energy_15min"], device_id="M-6", window_start=k6)
    assert m6["energy_kwh"] == pytest.approx(regs[k6 + 14 * 60_000] - regs[k6 - 60_000])
    assert m6["readings"] == 15


def test_hand_computed_daily_peak_valley(scn: ld.Scenario,
                                         exp: dict[str, pd.DataFrame]) -> None:
    day = ld.at(2, 0)
    regs = {p["ts"]: (p["energy_import_kwh"], p["energy_export_kwh"])
            for p in payloads(scn, MT, "M-5")}
    loads = []
    for n in range(96):
        k = day + n * Q
        (i1, e1), (i0, e0) = regs[k], regs[k - Q]
        loads.append(((i1 - i0) - (e1 - e0)) / 0.25)
    peak, valley = max(loads), min(loads)
    assert valley < 0 < peak  # the prosumer exports around midday
    r = row(exp["ads_load_daily"], entity_type="meter", entity_id="M-5", day=day)
    assert r["points"] == 96
    assert r["peak_load_kw"] == pytest.approx(peak)
    assert r["valley_load_kw"] == pytest.approx(valley)
    assert r["peak_valley_rate_pct"] == pytest.approx((peak - valley) / peak * 100)
    assert r["load_factor_pct"] == pytest.approx(sum(loads) / 96 / peak * 100)
    assert r["energy_export_kwh"] == pytest.approx(regs[day + 95 * Q][1] - regs[day - Q][1])
    curve = exp["ads_load_curve"]
    noon = row(curve, entity_type="meter", entity_id="M-5", window_start=day + 48 * Q)
    assert noon["point"] == 48 and noon["load_kw"] == pytest.approx(loads[48])


def test_voltage_qualification(scn: ld.Scenario, exp: dict[str, pd.DataFrame]) -> None:
    r = row(exp["ads_voltage_daily"], entity_type="meter", entity_id="M-2", dt="2026-03-02")
    volts = {p["ts"]: p["voltage_v"] for p in reversed(payloads(scn, MT, "M-2"))
             if lo._dt(p["ts"]) == "2026-03-02"}  # reversed: the first copy wins
    assert r["readings"] == len(volts) == 96
    assert r["qualified"] == 95  # the planted 204.6 V reading
    assert r["qualification_rate_pct"] == pytest.approx(95 / 96 * 100)
    assert r["voltage_min_v"] == ld.UNDERVOLTAGE_V
    assert r["voltage_avg_v"] == pytest.approx(sum(volts.values()) / 96)


def test_transformer_overload_and_ageing(scn: ld.Scenario,
                                         exp: dict[str, pd.DataFrame]) -> None:
    daily = exp["ads_transformer_daily"]
    for dt in ("2026-03-01", "2026-03-02"):
        day = row(daily, transformer_id="TX-2", dt=dt)
        assert day["overload_minutes"] == 10.0 and day["overloaded"]
        assert day["loading_rate_pct"] > 100
        for tx in ("TX-1", "TX-3"):
            assert not row(daily, transformer_id=tx, dt=dt)["overloaded"]
    tx2 = [p for p in payloads(scn, "transformer.telemetry", "TX-2")
           if lo._dt(p["ts"]) == "2026-03-01"]
    aging = sum(p["aging_factor"] for p in tx2) / 60
    r = row(daily, transformer_id="TX-2", dt="2026-03-01")
    assert r["loading_rate_pct"] == pytest.approx(max(p["load_pu"] for p in tx2) * 100)
    assert r["avg_loading_pct"] == pytest.approx(sum(p["load_pu"] for p in tx2) / len(tx2) * 100)
    assert r["hot_spot_max_c"] == max(p["hot_spot_temp_c"] for p in tx2)
    quarter = row(exp["dws_transformer"], entity_id="TX-2", grain="15min",
                  window_start=ld.OVERLOAD[1] - ld.OVERLOAD[1] % Q)
    assert quarter["overload_minutes"] == 10.0 and quarter["readings"] == 15
    assert r["aging_hours"] == pytest.approx(aging)
    assert r["loss_of_life_pct"] == pytest.approx(aging / 180_000 * 100)


def test_ess_daily_throughput(scn: ld.Scenario, exp: dict[str, pd.DataFrame]) -> None:
    bms = list({p["ts"]: p for p in reversed(payloads(scn, "ess.bms"))}.values())  # de-dup
    daily = exp["ads_ess_daily"]
    d1 = row(daily, ess_id="ESS-1", dt="2026-03-01")
    d2 = row(daily, ess_id="ESS-1", dt="2026-03-02")
    charging = [p for p in bms if p["ts"] < ld.at(2, 0)]
    assert d1["readings"] == len(charging) == 600
    assert d1["charge_kwh"] == pytest.approx(sum(-p["power_kw"] for p in charging) / 3600)
    assert d1["discharge_kwh"] == 0.0
    assert d2["discharge_kwh"] == pytest.approx(
        sum(p["power_kw"] for p in bms if p["ts"] >= ld.at(2, 0)) / 3600)
    assert d1["soc_max_pct"] > d1["soc_min_pct"]
    assert len(exp["dws_ess"][lambda d: d["grain"] == "1min"]) == 20


def test_feeder_unbalance_and_power_factor(scn: ld.Scenario,
                                           exp: dict[str, pd.DataFrame]) -> None:
    scada = [p for p in payloads(scn, "scada.feeder", "F2") if lo._dt(p["ts"]) == "2026-03-01"]
    us = []
    for p in scada:
        a, b, c = p["current_a"], p["current_b_a"], p["current_c_a"]
        m = (a + b + c) / 3
        us.append(100 * max(abs(a - m), abs(b - m), abs(c - m)) / m)
    f = row(exp["ads_feeder_daily"], feeder_id="F2", dt="2026-03-01")
    assert f["unbalance_max_pct"] == pytest.approx(max(us))
    assert f["unbalance_avg_pct"] == pytest.approx(sum(us) / len(us))
    pm = sum(p["active_power_kw"] for p in scada) / len(scada)
    qm = sum(p["reactive_power_kvar"] for p in scada) / len(scada)
    assert f["power_factor"] == pytest.approx(pm / math.hypot(pm, qm))
    regs = [p["energy_import_kwh"] for p in scada]
    meters = row(exp["dws_load"], entity_type="feeder", entity_id="F2", grain="1d",
                 window_start=ld.at(1, 0))
    supply = max(regs) - min(regs) + meters["energy_export_kwh"]
    assert f["supply_kwh"] == pytest.approx(supply)
    assert f["delivered_kwh"] == pytest.approx(meters["energy_import_kwh"])
    assert f["loss_kwh"] == pytest.approx(supply - meters["energy_import_kwh"])
    # F1's meters export (the prosumer) on 2026-03-02: that export is supply too.
    f1 = row(exp["ads_feeder_daily"], feeder_id="F1", dt="2026-03-02")
    head = row(exp["dws_feeder"], entity_id="F1", grain="1d", window_start=ld.at(2, 0))
    m1 = row(exp["dws_load"], entity_type="feeder", entity_id="F1", grain="1d",
             window_start=ld.at(2, 0))
    assert m1["energy_export_kwh"] > 0 and m1["devices"] == 5  # largest 15-min count
    f1_regs = {p["ts"]: p["energy_import_kwh"] for p in payloads(scn, "scada.feeder", "F1")}
    # The day's first interval takes the previous day's last register as its baseline.
    assert head["energy_import_kwh"] == pytest.approx(max(f1_regs.values()) - f1_regs[
        ld.at(1, 23, 59)])
    assert f1["supply_kwh"] == pytest.approx(
        head["energy_import_kwh"] - head["energy_export_kwh"] + m1["energy_export_kwh"])
    bus = row(exp["dws_feeder"], entity_id="F2", grain="1d", window_start=ld.at(1, 0))
    assert bus["bus_voltage_avg_v"] == pytest.approx(
        sum(p["bus_voltage_kv"] for p in scada) * 1000 / len(scada))


def test_rollups_are_consistent(exp: dict[str, pd.DataFrame]) -> None:
    load = exp["dws_load"]
    quarter = load[load["grain"] == "15min"]
    daily = load[load["grain"] == "1d"]
    for etype in ("meter", "transformer", "feeder", "substation", "region"):
        q = quarter[quarter["entity_type"] == etype]
        d = daily[daily["entity_type"] == etype]
        assert q["energy_import_kwh"].sum() == pytest.approx(d["energy_import_kwh"].sum())
        assert q["energy_import_kwh"].sum() > 0
    meters = quarter[quarter["entity_type"] == "meter"]
    regions = quarter[quarter["entity_type"] == "region"]
    known = meters[meters["entity_id"] != "M-99"]
    assert regions["energy_import_kwh"].sum() == pytest.approx(known["energy_import_kwh"].sum())
    volt = exp["dws_voltage"]
    assert (volt["voltage_avg_v"] * volt["readings"]).sub(volt["voltage_sum_v"]).abs().max() \
        < 1e-6
    usable = exp["dwd_meter_reading"]["usable"].sum()
    v15 = volt[(volt["grain"] == "15min") & (volt["entity_type"] == "meter")]
    assert v15["readings"].sum() == usable
