"""The health index against the simulator's ground truth on a simulated month.

Detection per fault type, false alarms, and the time to assess the fleet.

The seeded fleet (:class:`mock_devices.fleet.Fleet`) runs in this process with a fault
plan of every transformer and battery fault type; its messages are summarised into the
health job's input frames with the streaming job's definitions (``dws_transformer`` 1d
and 1h, ``ads_ess_daily``, DWD DGA rows, ``dim_device`` from the registry messages:
docs/indicators.md), and :func:`jobs.health.daily.assess` judges every asset and day.
Lake I/O (Spark reads and Hudi writes) is not part of these figures.

Scoring: a fault is **detected** when its asset is poor or critical on a day of the fault
(DGA faults: up to the day after, gases being sampled hourly). An asset-day is **affected**
from the first day of a fault to the day after its end (DGA faults: to the end of the run,
the gas stays in the oil); a poor or critical asset-day that no fault affects is a **false
alarm**.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jobs.health.daily import Inputs, assess
from jobs.health.dga import GASES
from lakehouse.time import DAY_MS, HOUR_MS, MINUTE_MS, dt_of, parse_time_ms
from mock_devices.config import FleetConfig
from mock_devices.faults import FaultRequest
from mock_devices.fleet import Fleet

log = logging.getLogger(__name__)

ALARM = {"poor", "critical"}
PERSISTENT = {"dga_thermal", "dga_partial_discharge", "dga_arcing"}
TX_FAULTS = ("transformer_overload", "transformer_overheating", "dga_thermal",
             "dga_partial_discharge", "dga_arcing")
ESS_FAULTS = ("ess_cell_imbalance", "ess_thermal_runaway")
OTHER_FAULTS = ("feeder_outage", "voltage_sag")
"""Faults that are no asset's health problem: a feeder outage silences its transformers
(a telemetry gap, not a finding), a sag disturbs voltages. Any poor/critical day they
cause is a false alarm."""


@dataclass(frozen=True)
class Plan:
    """What to simulate.

    Attributes:
        start: First day (yyyy-MM-dd).
        days: Days simulated (and judged).
        meters: Fleet size (the transformers follow from it).
        per_type: Faults of each transformer fault type.
        ess_per_type: Faults of each battery fault type.
        seed: Simulator seed.
        ess_interval_s: BMS interval (the contract's is 1 s).
        other_per_type: Faults of each of :data:`OTHER_FAULTS` (not health problems).

    """

    start: str = "2026-03-01"
    days: int = 30
    meters: int = 3000
    per_type: int = 3
    ess_per_type: int = 2
    seed: int = 42
    ess_interval_s: int = 1
    other_per_type: int = 2


def fault_plan(plan: Plan, tx_ids: list[str], ess_ids: list[str]) -> list[FaultRequest]:
    """Faults spread over the run: distinct transformers, starts on different days."""
    t0 = parse_time_ms(plan.start)
    rng = np.random.default_rng([plan.seed, 22])
    out: list[FaultRequest] = []
    txs = list(rng.permutation(tx_ids))
    # leave the first day fault-free (the first day has no previous category) and end
    # DGA faults two days before the run's end so their 48 h fit
    last = max(plan.days - 3, 2)
    for kind in TX_FAULTS:
        for _ in range(plan.per_type):
            day = int(rng.integers(1, last))
            hour = int(rng.integers(0, 20))
            out.append(FaultRequest(kind, str(txs.pop()), t0 + day * DAY_MS + hour * HOUR_MS))
    for kind in ESS_FAULTS:
        for i in range(plan.ess_per_type):
            day = int(rng.integers(1, last))
            out.append(FaultRequest(kind, ess_ids[i % len(ess_ids)],
                                    t0 + day * DAY_MS + int(rng.integers(8, 18)) * HOUR_MS))
    for kind in OTHER_FAULTS:
        for _ in range(plan.other_per_type):
            day = int(rng.integers(1, last))
            out.append(FaultRequest(kind, None, t0 + day * DAY_MS
                                    + int(rng.integers(0, 20)) * HOUR_MS))
    return out


@dataclass
class _Acc:
    """Running summaries of one run's messages."""

    tx_day: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    tx_hour: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    ess_day: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    dga: list[dict[str, Any]] = field(default_factory=list)
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)


def _tx(acc: _Acc, m: dict[str, Any]) -> None:
    ts, tx = int(m["ts"]), str(m["transformer_id"])
    day, hour = ts - ts % DAY_MS, ts - ts % HOUR_MS
    pu, top, hot = float(m["load_pu"]), float(m["top_oil_temp_c"]), float(m["hot_spot_temp_c"])
    # readings, aging_hours, hot max, top max, load max, overload minutes
    d = acc.tx_day.setdefault((tx, day), [0, 0.0, -1e9, -1e9, -1e9, 0.0])
    d[0] += 1
    d[1] += float(m["aging_factor"]) * MINUTE_MS / HOUR_MS
    d[2] = max(d[2], hot)
    d[3] = max(d[3], top)
    d[4] = max(d[4], pu)
    d[5] += 1.0 if pu > 1.0 else 0.0
    # load sum, top max, ambient sum, readings
    h = acc.tx_hour.setdefault((tx, hour), [0.0, -1e9, 0.0, 0])
    h[0] += pu
    h[1] = max(h[1], top)
    h[2] += float(m["ambient_temp_c"])
    h[3] += 1


def _ess(acc: _Acc, m: dict[str, Any]) -> None:
    ts, b = int(m["ts"]), str(m["ess_id"])
    day = ts - ts % DAY_MS
    gap, temp, soc = (float(m["cell_voltage_gap_mv"]), float(m["max_cell_temp_c"]),
                      float(m["soc_pct"]))
    # readings, gap max, gap sum, temp max, soc min, soc max, soc sum
    d = acc.ess_day.setdefault((b, day), [0, -1e9, 0.0, -1e9, 1e9, -1e9, 0.0])
    d[0] += 1
    d[1] = max(d[1], gap)
    d[2] += gap
    d[3] = max(d[3], temp)
    d[4] = min(d[4], soc)
    d[5] = max(d[5], soc)
    d[6] += soc


def simulate(plan: Plan) -> tuple[Inputs, list[dict[str, Any]], dict[str, float]]:
    """Run the fleet with the plan's faults; the job's inputs, the fault labels, timings."""
    t0 = parse_time_ms(plan.start)
    base = FleetConfig(meters=plan.meters, seed=plan.seed, ess_interval_s=plan.ess_interval_s)
    cfg = dataclasses.replace(base, devices=frozenset({"transformer", "dga", "ess",
                                                       "registry"}) & base.devices)
    probe = Fleet(cfg, t0, t0 + MINUTE_MS)
    faults = fault_plan(plan, list(probe.topology.tx_ids), list(probe.topology.ess_ids))
    fleet = Fleet(cfg, t0, t0 + plan.days * DAY_MS, faults=faults)
    acc = _Acc()
    started = time.perf_counter()
    for topic, _, msg in fleet.records():
        if not isinstance(msg, dict):
            continue
        if topic == "transformer.telemetry":
            _tx(acc, msg)
        elif topic == "ess.bms":
            _ess(acc, msg)
        elif topic == "transformer.dga":
            acc.dga.append({"device_id": msg["transformer_id"], "event_ts": int(msg["ts"]),
                            **{f"{g}_ppm": msg.get(f"{g}_ppm") for g in GASES}})
        elif topic == "device.registry":
            acc.registry[str(msg["device_id"])] = msg
    sim_s = time.perf_counter() - started
    inputs = Inputs(
        assets=pd.DataFrame([
            {"device_id": r["device_id"], "device_type": r["device_type"],
             "region_id": r.get("region_id"), "substation_id": r.get("substation_id"),
             "install_date": r.get("install_date")}
            for r in acc.registry.values() if r.get("device_type") in ("transformer", "ess")]),
        tx_daily=pd.DataFrame([
            {"entity_id": k[0], "window_start": k[1], "readings": v[0], "aging_hours": v[1],
             "hot_spot_max_c": v[2], "top_oil_max_c": v[3], "load_pu_max": v[4],
             "overload_minutes": v[5]} for k, v in acc.tx_day.items()]),
        tx_hourly=pd.DataFrame([
            {"entity_id": k[0], "window_start": k[1], "load_pu_avg": v[0] / v[3],
             "top_oil_max_c": v[1], "ambient_avg_c": v[2] / v[3]}
            for k, v in acc.tx_hour.items()]),
        dga=pd.DataFrame(acc.dga),
        ess_daily=pd.DataFrame([
            {"ess_id": k[0], "day": k[1], "readings": v[0], "cell_gap_max_mv": v[1],
             "cell_gap_avg_mv": v[2] / v[0], "cell_temp_max_c": v[3], "soc_min_pct": v[4],
             "soc_max_pct": v[5], "soc_avg_pct": v[6] / v[0]} for k, v in acc.ess_day.items()]),
    )
    return inputs, fleet.fault_labels(), {"simulate_s": sim_s}


def _day(ms: int) -> int:
    return ms - ms % DAY_MS


def evaluate(rows: pd.DataFrame, labels: list[dict[str, Any]], end_ms: int) -> dict[str, Any]:
    """Detection per fault type and false alarms of assessed rows against the labels."""
    recs = rows.to_dict("records")
    cat = {(str(r["asset_id"]), int(r["day"])): str(r["category"]) for r in recs}
    worst = {(str(r["asset_id"]), int(r["day"])): r["worst_factor"] for r in recs}
    affected: set[tuple[str, int]] = set()
    per_type: dict[str, dict[str, Any]] = defaultdict(lambda: {"faults": 0, "detected": 0,
                                                               "latency_days": []})
    others = 0
    for lab in labels:
        dev, kind = lab["device_id"], lab["type"]
        if kind not in TX_FAULTS + ESS_FAULTS:
            others += 1  # its days stay "clean": an alarm it causes is a false one
            continue
        first, last = _day(int(lab["start_ts"])), _day(int(lab["end_ts"]) - 1)
        until = end_ms - DAY_MS if kind in PERSISTENT else last + DAY_MS
        for d in range(first, min(until, end_ms - DAY_MS) + DAY_MS, DAY_MS):
            affected.add((dev, d))
        window = range(first, last + DAY_MS + (DAY_MS if kind in PERSISTENT else 0), DAY_MS)
        hits = [d for d in window if cat.get((dev, d)) in ALARM]
        t = per_type[kind]
        t["faults"] += 1
        if hits:
            t["detected"] += 1
            t["latency_days"].append((hits[0] - first) // DAY_MS)
    for t in per_type.values():
        t["detection_rate"] = round(t["detected"] / t["faults"], 3) if t["faults"] else None
        t["mean_latency_days"] = (round(float(np.mean(t["latency_days"])), 2)
                                  if t["latency_days"] else None)
        del t["latency_days"]
    clean = [k for k in cat if k not in affected]
    false = [k for k in clean if cat[k] in ALARM]
    by_factor: dict[str, int] = defaultdict(int)
    for k in false:
        by_factor[str(worst[k])] += 1
    faulted = {lab["device_id"] for lab in labels if lab["type"] in TX_FAULTS + ESS_FAULTS}
    return {
        "per_fault_type": dict(sorted(per_type.items())),
        "other_faults": others,
        "clean_asset_days": len(clean), "false_alarm_asset_days": len(false),
        "false_alarm_rate": round(len(false) / len(clean), 4) if clean else None,
        "false_alarms_by_worst_factor": dict(sorted(by_factor.items())),
        "false_alarm_assets": sorted({k[0] for k in false}),
        "never_faulted_assets_flagged": len({k[0] for k in false} - faulted),
        "categories": rows["category"].value_counts().to_dict(),
    }


def run_benchmark(plan: Plan | None = None) -> dict[str, Any]:
    """Simulate, assess (timed) and evaluate; figures as a flat-ish dict."""
    plan = plan or Plan()
    inputs, labels, timings = simulate(plan)
    start = parse_time_ms(plan.start)
    end = start + plan.days * DAY_MS
    t0 = time.perf_counter()
    rows = assess(inputs, start, end, int(time.time() * 1000))
    assess_s = time.perf_counter() - t0
    out = evaluate(rows, labels, end)
    assets = int(rows[["asset_type", "asset_id"]].drop_duplicates().shape[0])
    log.info("assessed %d assets × %d days in %.1f s", assets, plan.days, assess_s)
    return {"plan": dataclasses.asdict(plan), "first_dt": dt_of(start),
            "assets": assets, "asset_days": len(rows), **timings,
            "assess_s": round(assess_s, 2), **out}
