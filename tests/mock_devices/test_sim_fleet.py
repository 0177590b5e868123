"""Physics and contract properties of a generated day (no services needed)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from infra.serde import dumps
from lakehouse.contracts.schema import FieldType
from mock_devices.config import ConfigError, FleetConfig, parse_time_ms
from mock_devices.fleet import Fleet
from tests.mock_devices.sim_helpers import CONTRACTS, Msg, by_topic, dicts

START = parse_time_ms("2024-01-15T00:00")  # a Monday in winter
END = START + 86_400_000


@pytest.fixture(scope="module")
def day() -> tuple[Fleet, list[Msg]]:
    fleet = Fleet(
        FleetConfig(meters=400, seed=7, ess_interval_s=10, registry_changes_per_day=0), START, END
    )
    return fleet, dicts(fleet.records())


@pytest.fixture(scope="module")
def msgs(day: tuple[Fleet, list[Msg]]) -> dict[str, list[dict[str, Any]]]:
    return by_topic(day[1])


def test_every_message_validates_and_is_in_range(day: tuple[Fleet, list[Msg]]) -> None:
    seen = set()
    for topic, key, value in day[1]:
        c = CONTRACTS[topic]
        assert c.validate(value) is None, (topic, value, c.validate(value))
        assert key == value[c.key_field]
        for f in c.fields:
            v = value.get(f.name)
            if v is None or f.type not in (FieldType.DOUBLE, FieldType.INT, FieldType.BIGINT):
                continue
            assert f.minimum is None or v >= f.minimum, (topic, f.name, v)
            assert f.maximum is None or v <= f.maximum, (topic, f.name, v)
        seen.add(topic)
    assert seen == set(CONTRACTS) - {"sim.labels"}


def test_event_time_never_goes_back(day: tuple[Fleet, list[Msg]]) -> None:
    ts = [v[CONTRACTS[t].event_time_field] for t, _, v in day[1]]
    assert all(a <= b for a, b in zip(ts, ts[1:], strict=False))
    assert min(ts) == START and max(ts) < END


def test_cadences(msgs: dict[str, list[dict[str, Any]]], day: tuple[Fleet, list[Msg]]) -> None:
    t = day[0].topology
    assert len(msgs["meter.readings"]) == 96 * t.n_meters
    assert len(msgs["scada.feeder"]) == 1440 * len(t.feeder_ids)
    assert len(msgs["transformer.telemetry"]) == 1440 * len(t.tx_ids)
    assert len(msgs["transformer.dga"]) == 24 * len(t.tx_ids)
    assert len(msgs["ess.bms"]) == 8640 * len(t.ess_ids)
    assert len(msgs["device.registry"]) == sum(t.summary().values())
    assert {m["ts"] % 900_000 for m in msgs["meter.readings"]} == {0}


def _first_last(rows: list[dict[str, Any]], key: str, field: str) -> dict[str, tuple[float, float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r[field])
    return {k: (v[0], v[-1]) for k, v in out.items()}


def test_energy_counters_never_decrease(msgs: dict[str, list[dict[str, Any]]]) -> None:
    for topic, key, fields in (
        ("meter.readings", "device_id", ("energy_import_kwh", "energy_export_kwh")),
        ("scada.feeder", "feeder_id", ("energy_import_kwh", "energy_export_kwh")),
        ("scada.substation", "substation_id", ("energy_import_kwh", "energy_export_kwh")),
        ("pv.inverter", "inverter_id", ("energy_kwh",)),
    ):
        series: dict[str, list[float]] = defaultdict(list)
        for r in msgs[topic]:
            series[r[key]].append(tuple(r[f] for f in fields))  # type: ignore[arg-type]
        for values in series.values():
            arr = np.array(values)
            assert (np.diff(arr, axis=0) >= 0).all(), topic
    prosumers = {r["device_id"] for r in msgs["meter.readings"] if r["active_power_kw"] < 0}
    assert prosumers, "PV prosumers export at noon"


def test_feeder_energy_is_meters_plus_losses(
    day: tuple[Fleet, list[Msg]], msgs: dict[str, list[dict[str, Any]]]
) -> None:
    fleet = day[0]
    t = fleet.topology
    fdr = _first_last(msgs["scada.feeder"], "feeder_id", "energy_import_kwh")
    fdr_x = _first_last(msgs["scada.feeder"], "feeder_id", "energy_export_kwh")
    # Meters report every 15 min; compare the same instants: the day's first and last
    # 15-minute reads, against feeder reads at those instants.
    rows = [r for r in msgs["scada.feeder"] if r["ts"] in (START, END - 900_000)]
    feeder_at = {
        (r["feeder_id"], r["ts"]): r["energy_import_kwh"] - r["energy_export_kwh"] for r in rows
    }
    net = _first_last(msgs["meter.readings"], "device_id", "energy_import_kwh")
    exp = _first_last(msgs["meter.readings"], "device_id", "energy_export_kwh")
    meter_feeder = t.meter_feeder
    for f, fid in enumerate(t.feeder_ids):
        d_feeder = feeder_at[(fid, END - 900_000)] - feeder_at[(fid, START)]
        members = [t.meter_ids[m] for m in np.flatnonzero(meter_feeder == f)]
        d_meters = sum((net[m][1] - net[m][0]) - (exp[m][1] - exp[m][0]) for m in members)
        losses = d_feeder - d_meters
        rate = losses / d_feeder
        assert 0.02 < rate < 0.12, (fid, rate)
        assert fdr[fid][1] >= fdr[fid][0] and fdr_x[fid][1] >= fdr_x[fid][0]
    # Exactly: the ground-truth losses integrated over the whole day (rounding only).
    whole = {r["feeder_id"]: r for r in msgs["scada.feeder"] if r["ts"] == END - 60_000}
    first = {r["feeder_id"]: r for r in msgs["scada.feeder"] if r["ts"] == START}
    for f, fid in enumerate(t.feeder_ids):
        idx = np.flatnonzero(meter_feeder == f)
        true_meters = float(np.sum(fleet.meter_import[idx] - fleet.meter_export[idx]))
        feeder_now = fleet.feeder_import[f] - fleet.feeder_export[f]
        feeder_start = first[fid]["energy_import_kwh"] - first[fid]["energy_export_kwh"]
        start_meters = sum(net[t.meter_ids[m]][0] - exp[t.meter_ids[m]][0] for m in idx)
        assert feeder_now - feeder_start == pytest.approx(
            true_meters - start_meters + fleet.feeder_loss_kwh[f], abs=1e-3 * len(idx) + 1e-3
        )
        assert whole[fid]["energy_import_kwh"] <= fleet.feeder_import[f] + 1e-6


def test_load_curve_has_morning_and_evening_peaks(
    msgs: dict[str, list[dict[str, Any]]], day: tuple[Fleet, list[Msg]]
) -> None:
    t = day[0].topology
    residential = {t.meter_ids[m] for m in np.flatnonzero(t.meter_class == 0)}
    hourly = np.zeros(24)
    for r in msgs["meter.readings"]:
        if r["device_id"] in residential:
            hourly[int((r["ts"] // 3_600_000 + 8) % 24)] += r["active_power_kw"]
    assert hourly[7:10].max() > 1.3 * hourly[2:5].mean()  # morning peak (local time)
    assert hourly[18:22].max() > hourly[7:10].max()  # higher evening peak
    assert hourly[18:22].max() > 1.2 * hourly[11:16].mean()


def test_voltage_sags_towards_the_feeder_end(
    msgs: dict[str, list[dict[str, Any]]], day: tuple[Fleet, list[Msg]]
) -> None:
    t = day[0].topology
    peak = START + 11 * 3_600_000  # 19:00 local
    v = {
        r["transformer_id"]: r["lv_voltage_v"] / (1 + 0.025 * r["tap_position"])
        for r in msgs["transformer.telemetry"]
        if r["ts"] == peak
    }
    pos = np.array([t.tx_pos_km[t.tx_ids.index(k)] for k in v])
    corr = np.corrcoef(pos, np.array(list(v.values())))[0, 1]
    assert corr < -0.5
    volts = [r["voltage_v"] for r in msgs["meter.readings"]]
    assert 207 < min(volts) and max(volts) < 253  # within ±10 % of 230 V


def test_transformers_heat_under_load(msgs: dict[str, list[dict[str, Any]]]) -> None:
    rows = msgs["transformer.telemetry"]
    for r in rows[:2000]:
        assert r["hot_spot_temp_c"] > r["top_oil_temp_c"] > r["ambient_temp_c"]
    by_tx: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        by_tx[r["transformer_id"]].append(
            (r["load_pu"], r["hot_spot_temp_c"] - r["ambient_temp_c"])
        )
    for series in by_tx.values():
        load, rise = np.array(series).T
        assert np.corrcoef(load, rise)[0, 1] > 0.5
    assert max(r["load_pu"] for r in rows) < 1.05


def test_soc_integrates_current_at_one_hertz() -> None:
    start = parse_time_ms("2024-01-15T09:30")  # charging and discharging both happen
    fleet = Fleet(
        FleetConfig(meters=50, seed=3, devices=frozenset({"ess", "registry"})),
        start,
        start + 3 * 3_600_000,
    )
    recs = list(fleet.records())
    m = by_topic(recs)
    reg = {r["device_id"]: r for r in m["device.registry"]}
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in m["ess.bms"]:
        series[r["ess_id"]].append(r)
    for eid, rows in series.items():
        cap_ah = reg[eid]["rated_energy_kwh"] / reg[eid]["rated_voltage_kv"]
        soc = np.array([r["soc_pct"] for r in rows])
        cur = np.array([r["dc_current_a"] for r in rows])
        assert np.all(np.diff([r["ts"] for r in rows]) == 1000)
        expected = -cur[:-1] * 1.0 / (3600.0 * cap_ah) * 100.0
        assert np.allclose(np.diff(soc), expected, atol=1.1e-4)
        total = soc[0] + np.cumsum(expected)
        assert np.allclose(total, soc[1:], atol=1.1e-4)
        states = {r["state"] for r in rows}
        assert {"charging", "discharging"} & states
        for r in rows:
            assert r["state"] == (
                "discharging"
                if r["dc_current_a"] > 1
                else "charging"
                if r["dc_current_a"] < -1
                else "idle"
            )
            assert r["cell_voltage_gap_mv"] == pytest.approx(
                (r["max_cell_voltage_v"] - r["min_cell_voltage_v"]) * 1000, abs=0.15
            )


def test_pv_follows_the_sun() -> None:
    start = parse_time_ms("2024-06-20T18:00")  # 02:00 local (UTC+8)
    fleet = Fleet(
        FleetConfig(meters=50, seed=5, devices=frozenset({"pv"})), start, start + 11 * 3_600_000
    )
    rows = by_topic(list(fleet.records()))["pv.inverter"]
    night = [r for r in rows if r["irradiance_w_m2"] == 0]
    day_rows = [r for r in rows if r["irradiance_w_m2"] > 600]
    assert night and all(r["ac_power_kw"] == 0 and r["state"] == "standby" for r in night)
    assert day_rows and all(r["ac_power_kw"] > 0 for r in day_rows)
    assert max(r["ac_power_kw"] for r in rows) <= fleet.topology.pv_ac_kw.max()


def _digest(seed: int, meters: int = 120) -> bytes:
    fleet = Fleet(
        FleetConfig(meters=meters, seed=seed, ess_interval_s=5),
        START,
        START + 2 * 3_600_000,
        faults=[],
    )
    return b"".join(dumps(list(r)) for r in fleet.records())


def test_same_seed_same_messages() -> None:
    a = _digest(9)
    assert a == _digest(9)
    assert a != _digest(10)


def test_bad_range_is_refused() -> None:
    with pytest.raises(ConfigError):
        Fleet(FleetConfig(meters=10), START, START)


def test_registry_changes_are_versioned_and_move_meters() -> None:
    fleet = Fleet(
        FleetConfig(
            meters=300, seed=4, registry_changes_per_day=48, devices=frozenset({"registry"})
        ),
        START,
        START + 43_200_000,
    )
    rows = by_topic(list(fleet.records()))["device.registry"]
    changes = [r for r in rows if r["version"] > 1]
    kinds = {r["change_type"] for r in changes}
    assert kinds == {"replace", "move"}
    versions: dict[str, int] = {}
    for r in rows:
        assert r["version"] == versions.get(r["device_id"], 0) + 1
        versions[r["device_id"]] = r["version"]
    t = fleet.topology
    for r in changes:
        if r["change_type"] == "move":
            m = t.meter_ids.index(r["device_id"])
            latest = max(
                (c for c in changes if c["device_id"] == r["device_id"]), key=lambda c: c["version"]
            )
            assert latest["transformer_id"] == t.tx_ids[t.meter_tx[m]]
        else:
            assert r["install_date"] == "2024-01-15"
            assert r["device_type"] == "transformer"


def test_nothing_at_or_after_the_end() -> None:
    fleet = Fleet(FleetConfig(meters=30, seed=1), START, START + 30_000)
    ts = [v[CONTRACTS[t].event_time_field] for t, _, v in dicts(fleet.records())]
    assert max(ts) == START + 29_000 and min(ts) == START
