"""Injected faults appear where their labels say and nowhere else."""

from __future__ import annotations

from typing import Any

import pytest

from mock_devices.config import ConfigError, FleetConfig, parse_time_ms
from mock_devices.faults import CATALOGUE, FaultRequest, parse_fault, schedule_faults
from mock_devices.fleet import Fleet
from mock_devices.topology import build_topology
from tests.mock_devices.sim_helpers import CONTRACTS, Msg, by_topic, dicts, index

H = 3_600_000
LOCAL_START = parse_time_ms("2024-07-01T00:00")  # 08:00 local
LOCAL_END = LOCAL_START + 8 * H
LOCAL = FleetConfig(
    meters=400, seed=11, ess_interval_s=5, dga_interval_s=600, registry_changes_per_day=0
)
LOCAL_FAULTS = [
    "meter_tampering:MTR-000010@2024-07-01T02:00/3h",
    "meter_stuck:MTR-000020@2024-07-01T03:00/2h",
    "dga_thermal:TX-00002@2024-07-01T01:00/4h",
    "dga_arcing:TX-00005@2024-07-01T01:00/4h",
    "dga_partial_discharge:TX-00007@2024-07-01T01:00/4h",
    "transformer_overheating:TX-00009@2024-07-01T01:00/5h",
    "ess_cell_imbalance:ESS-01@2024-07-01T04:00/2h",
    "ess_thermal_runaway:ESS-02@2024-07-01T05:00/45m",
]


def _run(
    config: FleetConfig, start: int, end: int, faults: list[str]
) -> tuple[Fleet, list[Msg]]:
    fleet = Fleet(config, start, end, [parse_fault(f) for f in faults])
    return fleet, dicts(fleet.records())


@pytest.fixture(scope="module")
def local() -> tuple[list[Msg], Fleet, list[Msg]]:
    _, base = _run(LOCAL, LOCAL_START, LOCAL_END, [])
    fleet, faulted = _run(LOCAL, LOCAL_START, LOCAL_END, LOCAL_FAULTS)
    return base, fleet, faulted


def test_labels_are_emitted_at_fault_start(local: tuple[list[Msg], Fleet, list[Msg]]) -> None:
    _, fleet, faulted = local
    labels = [v for t, _, v in faulted if t == "sim.labels"]
    assert len(labels) == len(LOCAL_FAULTS)
    for lab in labels:
        assert CONTRACTS["sim.labels"].validate(lab) is None
        assert lab["kind"] == "fault" and lab["seed"] == 11 and lab["end_ts"] > lab["start_ts"]
    pos = {v["label_id"]: i for i, (t, _, v) in enumerate(faulted) if t == "sim.labels"}
    for i, (t, _, v) in enumerate(faulted):
        if t != "sim.labels" and isinstance(v, dict) and "ts" in v:
            for lab in labels:
                if v["ts"] < lab["start_ts"]:
                    assert i < pos[lab["label_id"]]


# A battery bank that trips changes its substation's load, hence (slightly) the MV bus
# voltage behind the main transformer: voltages and currents downstream may move, nothing
# else (energy registers, loads, temperatures) may.
_BUS_EFFECT = {
    "bus_voltage_kv",
    "voltage_v",
    "voltage_b_v",
    "voltage_c_v",
    "lv_voltage_v",
    "current_a",
    "current_b_a",
    "current_c_a",
    "oltc_tap_position",
}
_SUB_EFFECT = _BUS_EFFECT | {
    "active_power_kw",
    "reactive_power_kvar",
    "energy_import_kwh",
    "energy_export_kwh",
}


def _substation_of(fleet: Fleet, topic: str, key: str) -> str | None:
    t = fleet.topology
    if topic == "scada.substation":
        return key
    if topic == "scada.feeder":
        return t.substation_ids[t.feeder_sub[t.feeder_ids.index(key)]]
    if topic in ("transformer.telemetry", "transformer.dga"):
        return t.substation_ids[t.feeder_sub[t.tx_feeder[t.tx_ids.index(key)]]]
    if topic == "meter.readings":
        return t.substation_ids[t.meter_sub[t.meter_ids.index(key)]]
    return None


def _allowed(
    labels: list[dict[str, Any]], fleet: Fleet, topic: str, key: str, ts: int, fields: set[str]
) -> bool:
    t = fleet.topology
    for lab in labels:
        if ts < lab["start_ts"]:
            continue
        dev, kind = lab["device_id"], lab["type"]
        if kind.startswith("meter_") and (topic, key) == ("meter.readings", dev):
            return True
        if kind.startswith("dga_") and (topic, key) == ("transformer.dga", dev):
            return True
        if kind == "transformer_overheating" and key == dev:
            return True
        if kind.startswith("ess_") and (topic, key) == ("ess.bms", dev):
            return True
        if kind == "ess_thermal_runaway":
            sub = t.substation_ids[t.ess_sub[t.ess_ids.index(dev)]]
            effect = _SUB_EFFECT if topic == "scada.substation" else _BUS_EFFECT
            if _substation_of(fleet, topic, key) == sub and fields <= effect:
                return True
    return False


def test_local_faults_change_only_their_devices(
    local: tuple[list[Msg], Fleet, list[Msg]],
) -> None:
    base, fleet, faulted = local
    labels = [v for t, _, v in faulted if t == "sim.labels"]
    a = index(base)
    b = index([r for r in faulted if r[0] != "sim.labels"])
    assert a.keys() == b.keys()
    changed = [k for k in a if a[k] != b[k]]
    assert changed
    for k in changed:
        fields = {f for f in a[k] if a[k][f] != b[k][f]}
        assert _allowed(labels, fleet, *k, fields), (k, fields)
    # ... and each fault shows inside its own window.
    for lab in labels:
        hits = [
            k
            for k in changed
            if k[1] == lab["device_id"] and lab["start_ts"] <= k[2] < lab["end_ts"]
        ]
        assert hits, lab["type"]


def test_fault_signatures(local: tuple[list[Msg], Fleet, list[Msg]]) -> None:
    base, _, faulted = local
    m0, m1 = by_topic(base), by_topic([r for r in faulted if r[0] != "sim.labels"])
    labels = {v["type"]: v for t, _, v in faulted if t == "sim.labels"}

    def window(
        lab: dict[str, Any], rows: list[dict[str, Any]], key: str, dev: str
    ) -> list[dict[str, Any]]:
        return [r for r in rows if r[key] == dev and lab["start_ts"] <= r["ts"] < lab["end_ts"]]

    stuck = labels["meter_stuck"]
    rows = window(stuck, m1["meter.readings"], "device_id", "MTR-000020")
    assert (
        len({(r["energy_import_kwh"], r["voltage_v"], r["active_power_kw"]) for r in rows}) == 1
        and len(rows) == 8
    )

    tamper = labels["meter_tampering"]
    frac = float(tamper["detail"].split(":")[1].strip(" }"))
    before = window(tamper, m0["meter.readings"], "device_id", "MTR-000010")
    after = window(tamper, m1["meter.readings"], "device_id", "MTR-000010")
    for x, y in zip(before, after, strict=True):
        assert y["active_power_kw"] == pytest.approx(x["active_power_kw"] * frac, abs=2e-3)

    for kind, gas in (
        ("dga_thermal", "c2h4_ppm"),
        ("dga_arcing", "c2h2_ppm"),
        ("dga_partial_discharge", "h2_ppm"),
    ):
        lab = labels[kind]
        rows = [r for r in m1["transformer.dga"] if r["transformer_id"] == lab["device_id"]]
        pre = [r[gas] for r in rows if r["ts"] < lab["start_ts"]]
        end = [r[gas] for r in rows if r["ts"] >= lab["end_ts"] - 600_000]
        assert end[0] - max(pre) > max(3.0, 0.2 * max(pre)), kind

    oh = labels["transformer_overheating"]
    hot0 = {
        r["ts"]: r["top_oil_temp_c"]
        for r in m0["transformer.telemetry"]
        if r["transformer_id"] == "TX-00009"
    }
    hot1 = {
        r["ts"]: r["top_oil_temp_c"]
        for r in m1["transformer.telemetry"]
        if r["transformer_id"] == "TX-00009"
    }
    assert max(hot1[ts] - hot0[ts] for ts in hot0 if ts < oh["end_ts"]) > 10.0

    imb = labels["ess_cell_imbalance"]
    gaps = [(r["ts"], r["cell_voltage_gap_mv"]) for r in m1["ess.bms"]]
    assert max(g for ts, g in gaps if imb["start_ts"] <= ts < imb["end_ts"]) > 150
    runaway = labels["ess_thermal_runaway"]
    hot = [r for r in m1["ess.bms"] if r["max_cell_temp_c"] > 55]
    assert hot and all(r["ess_id"] == "ESS-02" and r["ts"] >= runaway["start_ts"] for r in hot)
    tripped = [r for r in m1["ess.bms"] if r["state"] == "fault"]
    assert tripped and all(r["ess_id"] == "ESS-02" and r["dc_current_a"] == 0 for r in tripped)
    assert min(r["ts"] for r in tripped) < runaway["end_ts"]
    assert all(r["cell_voltage_gap_mv"] < 100 for r in m0["ess.bms"])
    assert all(r["max_cell_temp_c"] < 45 for r in m0["ess.bms"])


GRID_START = parse_time_ms("2024-01-15T09:00")  # 17:00 local, evening peak
GRID = FleetConfig(
    meters=3000,
    seed=1,
    registry_changes_per_day=0,
    devices=frozenset({"meter", "transformer", "feeder", "substation"}),
)


@pytest.fixture(scope="module")
def grid() -> tuple[Fleet, dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    topo = build_topology(GRID)
    sub0_feeders = [f for f, s in zip(topo.feeder_ids, topo.feeder_sub, strict=True) if s == 0]
    other_tx = [
        tx for tx, f in zip(topo.tx_ids, topo.tx_feeder, strict=True) if topo.feeder_sub[f] == 1
    ]
    faults = [
        f"transformer_overload:{other_tx[0]}@2024-01-15T10:00/1h",
        "voltage_sag:SUB-01@2024-01-15T11:00/10m",
        f"feeder_outage:{sub0_feeders[0]}@2024-01-15T11:30/30m",
    ]
    fleet, recs = _run(GRID, GRID_START, GRID_START + int(3.5 * H), faults)
    labels = {v["type"]: v for t, _, v in recs if t == "sim.labels"}
    return fleet, by_topic([r for r in recs if r[0] != "sim.labels"]), labels


def test_overload_only_where_labelled(grid: tuple[Fleet, Any, Any]) -> None:
    _, m, labels = grid
    lab = labels["transformer_overload"]
    over = [r for r in m["transformer.telemetry"] if r["load_pu"] >= 1.2]
    assert over and all(
        r["transformer_id"] == lab["device_id"] and lab["start_ts"] <= r["ts"] < lab["end_ts"]
        for r in over
    )
    inside = [
        r
        for r in m["transformer.telemetry"]
        if r["transformer_id"] == lab["device_id"] and lab["start_ts"] <= r["ts"] < lab["end_ts"]
    ]
    assert len(inside) == 60 and all(r["load_pu"] >= 1.2 for r in inside)
    assert inside[-1]["hot_spot_temp_c"] > inside[0]["hot_spot_temp_c"] + 15


def test_sag_only_on_its_substation(grid: tuple[Fleet, Any, Any]) -> None:
    fleet, m, labels = grid
    lab = labels["voltage_sag"]
    low = [r for r in m["scada.substation"] if r["bus_voltage_kv"] < 9.0]
    assert len(low) == 10 and all(
        r["substation_id"] == "SUB-01" and lab["start_ts"] <= r["ts"] < lab["end_ts"] for r in low
    )
    t = fleet.topology
    sub_of = {t.meter_ids[i]: t.substation_ids[s] for i, s in enumerate(t.meter_sub)}
    v = {(r["device_id"], r["ts"]): r["voltage_v"] for r in m["meter.readings"]}
    at, prev = lab["start_ts"], lab["start_ts"] - 900_000
    ratios = {sub: [] for sub in t.substation_ids}  # type: dict[str, list[float]]
    for (dev, ts), volts in v.items():
        if ts == at:
            ratios[sub_of[dev]].append(volts / v[(dev, prev)])
    assert max(ratios["SUB-01"]) < 0.9
    assert min(ratios["SUB-02"]) > 0.95


def test_outage_silences_its_feeder(grid: tuple[Fleet, Any, Any]) -> None:
    fleet, m, labels = grid
    lab = labels["feeder_outage"]
    fid = lab["device_id"]
    opened = [r for r in m["scada.feeder"] if not r["breaker_closed"]]
    assert len(opened) == 30 and all(
        r["feeder_id"] == fid and r["current_a"] == 0 and r["active_power_kw"] == 0 for r in opened
    )
    assert min(r["ts"] for r in opened) == lab["start_ts"]
    t = fleet.topology
    f = t.feeder_ids.index(fid)
    dead_tx = {t.tx_ids[i] for i in range(len(t.tx_ids)) if t.tx_feeder[i] == f}
    dead_m = {t.meter_ids[i] for i in range(t.n_meters) if t.meter_feeder[i] == f}
    in_win = [r for r in m["transformer.telemetry"] if lab["start_ts"] <= r["ts"] < lab["end_ts"]]
    assert in_win and not dead_tx & {r["transformer_id"] for r in in_win}
    in_win_m = {
        r["device_id"] for r in m["meter.readings"] if lab["start_ts"] <= r["ts"] < lab["end_ts"]
    }
    assert in_win_m and not dead_m & in_win_m
    after = {r["device_id"] for r in m["meter.readings"] if r["ts"] == lab["end_ts"]}
    assert dead_m <= after


def test_random_placement_is_deterministic_and_valid() -> None:
    topo = build_topology(FleetConfig(meters=200, seed=3))
    reqs = [FaultRequest(name) for name in CATALOGUE]
    a = schedule_faults(reqs, topo, LOCAL_START, LOCAL_START + 48 * H, seed=3)
    assert a == schedule_faults(reqs, topo, LOCAL_START, LOCAL_START + 48 * H, seed=3)
    for spec in a:
        assert LOCAL_START <= spec.start_ms < spec.end_ms <= LOCAL_START + 48 * H
        assert spec.start_ms % 60_000 == 0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nope", "unknown fault"),
        ("meter_stuck:TX-00001", "no meter"),
        ("voltage_sag@2030-01-01", "outside"),
    ],
)
def test_bad_fault_requests(text: str, match: str) -> None:
    topo = build_topology(FleetConfig(meters=100, seed=1))
    with pytest.raises(ConfigError, match=match):
        schedule_faults([parse_fault(text)], topo, LOCAL_START, LOCAL_START + H, seed=1)
