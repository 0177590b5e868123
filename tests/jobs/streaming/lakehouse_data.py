"""A seeded input scenario for the whole lakehouse pipeline: every topic, every defect.

``scenario(seed)`` returns the messages a test publishes, in two phases: ``phase1`` is
published first and must be fully processed before ``phase2`` (late and too-late
readings) is published. Every test topic has one partition, so arrival order is the
order of the lists.

Timeline (UTC): the meters read every 15 minutes from 2026-03-01 22:00 for 30 hours
(last reading 2026-03-03 03:45); the 1-minute sources (feeder SCADA, transformer
telemetry, the 60 s meter) cover the hour around the first midnight
(2026-03-01 23:30 – 2026-03-02 00:29) so 1d windows and a day boundary are exercised;
the battery (1 Hz) charges for 10 minutes before and discharges for 10 minutes after
that midnight. Values come from a seeded ``random.Random``; the placement of every
defect (device and event time) is fixed and listed in ``Scenario.defects``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from lakehouse.contracts.messages import (
    DEVICE_REGISTRY,
    ESS_BMS,
    FEEDER_SCADA,
    MESSAGES,
    METER_READING,
    PV_INVERTER,
    SIM_LABEL,
    SUBSTATION_SCADA,
    TRANSFORMER_DGA,
    TRANSFORMER_TELEMETRY,
)
from lakehouse.contracts.schema import MessageContract

Message = tuple[str, bytes | None, bytes]
"""(topic suffix, key, value) as published."""

MINUTE_MS = 60_000
QUARTER_MS = 900_000
HOUR_MS = 3_600_000
WATERMARK_DELAY_MS = 300_000
ALLOWED_LATENESS_MS = 3_600_000


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> int:
    """Epoch milliseconds of 2026-03-``day`` ``hour``:``minute``:``second`` UTC."""
    return int(datetime(2026, 3, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


T0 = at(1, 22)
"""Scenario start: first meter reading; every registry version 1 takes effect here."""
METER_STEPS = 120
"""15-minute readings per regular meter (30 hours)."""
METER_END = T0 + (METER_STEPS - 1) * QUARTER_MS
"""Newest meter event time (2026-03-03 03:45)."""
FAST_START = at(1, 23, 30)
FAST_MINUTES = 60
"""1-minute sources (feeders, transformers, meter M-6) cover [FAST_START, +60 min)."""
T_MOVE = at(2, 10)
"""Meter M-3 moves from TX-1 (F1, SUB-1, R1) to TX-3 (F2, SUB-2, R2): registry version 2."""
T_RESEND = at(2, 12)
"""Meter M-2's version 1 is published again (a registry re-publishing its devices)."""

EXACT_DUP = ("M-1", at(2, 6))
DIFF_DUP = ("M-2", at(2, 8))
OUT_OF_ORDER = ("M-6", at(1, 23, 50))
SPIKE_VOLTAGE = ("M-1", at(2, 14))
SPIKE_POWER = ("M-4", at(2, 15, 30))
STUCK = ("M-7", (at(2, 3), at(2, 3, 15), at(2, 3, 30), at(2, 3, 45)))
GAP = ("M-2", (at(3, 2, 45), at(3, 3), at(3, 3, 15)))
LATE_METER = ("M-2", (at(3, 3), at(3, 3, 15)))
LATE_FEEDER = ("F1", at(1, 23, 49))
TOO_LATE = ("M-1", at(3, 1, 7, 30))
UNKNOWN = ("M-99", (at(2, 9), at(2, 9, 15), at(2, 9, 30), at(2, 9, 45)))
UNDERVOLTAGE = ("M-2", at(2, 18))
RANGE = ("TX-1", at(2, 0, 5))
OVERLOAD = ("TX-2", at(1, 23, 50), at(2, 0, 10))
ESS_CHARGE = at(1, 23, 35)
ESS_DISCHARGE = at(2, 0, 5)
ESS_SECONDS = 600
ESS_TRIPLICATE = ("ESS-1", ESS_CHARGE + 120_000)
UNDERVOLTAGE_V = 204.6


@dataclass(frozen=True)
class Defect:
    """One deliberate defect (or notable event) of the scenario.

    Attributes:
        name: Defect kind, e.g. ``exact_duplicate``.
        topic: Topic suffix it is published on.
        device_id: Message key / device concerned (``""`` when none).
        ts: Event time concerned (0 when the message has none).
        phase: 1 or 2.
        note: What was done.

    """

    name: str
    topic: str
    device_id: str
    ts: int
    phase: int
    note: str


@dataclass(frozen=True)
class Scenario:
    """The messages to publish, in two phases, and what was planted in them."""

    seed: int
    phase1: list[Message]
    phase2: list[Message]
    watermark_delay_ms: int
    allowed_lateness_ms: int
    defects: tuple[Defect, ...]

    def defect(self, name: str) -> list[Defect]:
        """The planted defects called ``name`` (empty when none)."""
        return [d for d in self.defects if d.name == name]

    @property
    def messages(self) -> list[tuple[int, Message]]:
        """(phase, message) for every message, in publish order."""
        return [(1, m) for m in self.phase1] + [(2, m) for m in self.phase2]


CONTRACTS: dict[str, MessageContract] = {m.topic: m for m in MESSAGES}
"""Message contract per topic suffix."""


def valid(topic: str, value: bytes) -> bool:
    """Whether ``value`` is a JSON object conforming to ``topic``'s contract."""
    try:
        payload = json.loads(value)
    except ValueError:
        return False
    return isinstance(payload, dict) and CONTRACTS[topic].validate(payload) is None


# --- topology -------------------------------------------------------------------------

REGIONS = {"SUB-1": "R1", "SUB-2": "R2"}
FEEDERS = {"F1": "SUB-1", "F2": "SUB-2"}
TRANSFORMERS = {"TX-1": ("F1", 50.0), "TX-2": ("F1", 25.0), "TX-3": ("F2", 50.0)}


@dataclass(frozen=True)
class _Meter:
    device_id: str
    transformer_id: str
    phases: int
    customer_class: str
    base_kw: float
    interval_s: int = 900
    pv_kw: float = 0.0


METERS: tuple[_Meter, ...] = (
    _Meter("M-1", "TX-1", 1, "residential", 1.0),
    _Meter("M-2", "TX-1", 1, "residential", 0.8),
    _Meter("M-3", "TX-1", 3, "commercial", 3.0),
    _Meter("M-4", "TX-2", 3, "industrial", 10.0),
    _Meter("M-5", "TX-2", 1, "residential", 0.9, pv_kw=6.0),
    _Meter("M-6", "TX-3", 1, "residential", 1.2, interval_s=60),
    _Meter("M-7", "TX-3", 3, "commercial", 4.0),
)
MOVED_TO = "TX-3"


def _hour(ts: int) -> float:
    return (ts % 86_400_000) / HOUR_MS


def _pv(meter: _Meter, ts: int) -> float:
    h = _hour(ts)
    return meter.pv_kw * max(0.0, math.sin(math.pi * (h - 6.0) / 12.0)) if 6 < h < 18 else 0.0


def profile_kw(meter: _Meter, ts: int) -> float:
    """Noise-free net active power of a meter at ``ts`` (negative: exporting)."""
    h = _hour(ts)
    if meter.customer_class == "residential":
        shape = 0.4 + 0.9 * math.exp(-(((h - 19.0) / 2.5) ** 2)) \
            + 0.4 * math.exp(-(((h - 7.5) / 1.5) ** 2))
    elif meter.customer_class == "commercial":
        shape = 0.5 + (0.8 * math.sin(math.pi * (h - 7.0) / 12.0) if 7 < h < 19 else 0.0)
    else:
        shape = 1.0 + 0.2 * math.sin(2 * math.pi * h / 24.0)
    return meter.base_kw * shape - _pv(meter, ts)


def _dumps(payload: dict | list) -> bytes:
    return json.dumps(payload).encode()


@dataclass
class _Out:
    ts: int
    rank: int
    device: str
    topic: str
    key: bytes | None
    value: bytes


_RANK = {c.topic: i for i, c in enumerate((
    DEVICE_REGISTRY, METER_READING, FEEDER_SCADA, SUBSTATION_SCADA, TRANSFORMER_TELEMETRY,
    TRANSFORMER_DGA, ESS_BMS, PV_INVERTER, SIM_LABEL,
))}


def _out(contract: MessageContract, payload: dict) -> _Out:
    value = _dumps(payload)
    assert valid(contract.topic, value), (contract.name, contract.validate(payload))
    device = str(payload[contract.key_field])
    return _Out(int(payload[contract.event_time_field]), _RANK[contract.topic], device,
                contract.topic, device.encode(), value)


# --- registry -------------------------------------------------------------------------

def _registry(rng: random.Random) -> tuple[list[_Out], dict]:
    recs: list[dict] = []

    def rec(device_id: str, device_type: str, parent: str, region: str, **extra: object) -> dict:
        r: dict = {
            "device_id": device_id, "ts": T0, "version": 1, "change_type": "create",
            "device_type": device_type, "model": f"{device_type.upper()}-X{rng.randint(1, 9)}",
            "manufacturer": rng.choice(["GridCo", "VoltWorks", "Ampere AG"]),
            "serial_number": f"SN-{device_id}-{rng.randint(10_000, 99_999)}",
            "status": "in_service",
            "install_date": f"20{rng.randint(10, 24)}-0{rng.randint(1, 9)}-15",
            "region_id": region,
            "latitude": round(31.0 + rng.uniform(0, 0.5), 6),
            "longitude": round(121.0 + rng.uniform(0, 0.5), 6),
            "parent_id": parent,
        }
        r.update({k: v for k, v in extra.items() if v is not None})
        recs.append(r)
        return r

    # A device's own column is left out (nothing is upstream of itself): the DWD rows of
    # substations, feeders and transformers must fill it with the device id.
    for sub, region in REGIONS.items():
        rec(sub, "substation", region, region, rated_power_kva=40_000.0,
            rated_voltage_kv=110.0)
    for fdr, sub in FEEDERS.items():
        rec(fdr, "feeder", sub, REGIONS[sub], substation_id=sub,
            rated_voltage_kv=10.5, length_km=round(rng.uniform(3, 12), 2))
    for tx, (fdr, kva) in TRANSFORMERS.items():
        sub = FEEDERS[fdr]
        rec(tx, "transformer", fdr, REGIONS[sub], substation_id=sub, feeder_id=fdr,
            rated_power_kva=kva, rated_voltage_kv=10.5,
            position_km=round(rng.uniform(0.5, 3), 2))
    for m in METERS:
        fdr = TRANSFORMERS[m.transformer_id][0]
        sub = FEEDERS[fdr]
        rec(m.device_id, "meter", m.transformer_id, REGIONS[sub], substation_id=sub,
            feeder_id=fdr, transformer_id=m.transformer_id, phases=m.phases,
            customer_class=m.customer_class, rated_voltage_kv=0.23 if m.phases == 1 else 0.4,
            pv_capacity_kw=m.pv_kw or None, position_km=round(rng.uniform(0.5, 3), 2))
    rec("ESS-1", "ess", "SUB-1", "R1", substation_id="SUB-1", rated_power_kva=100.0,
        rated_energy_kwh=500.0, rated_voltage_kv=0.8)
    rec("PV-1", "pv_inverter", "SUB-1", "R1", substation_id="SUB-1", rated_power_kva=500.0,
        rated_voltage_kv=0.8)

    m3 = next(r for r in recs if r["device_id"] == "M-3")
    fdr = TRANSFORMERS[MOVED_TO][0]
    moved = {**m3, "ts": T_MOVE, "version": 2, "change_type": "move", "parent_id": MOVED_TO,
             "transformer_id": MOVED_TO, "feeder_id": fdr, "substation_id": FEEDERS[fdr],
             "region_id": REGIONS[FEEDERS[fdr]]}
    m1 = next(r for r in recs if r["device_id"] == "M-1")
    dup = {**m1, "serial_number": m1["serial_number"] + "-DUP", "model": "DUPLICATE-COPY"}
    return [_out(DEVICE_REGISTRY, r) for r in (*recs, moved)], dup


# --- meters ---------------------------------------------------------------------------

def _meter_msg(m: _Meter, ts: int, seq: int, imp: float, exp: float, p: float, v: float,
               pf: float, rng: random.Random) -> dict:
    q = abs(p) * math.tan(math.acos(pf))
    i = abs(p) * 1000.0 / (v * pf * m.phases)
    msg: dict = {
        "device_id": m.device_id, "ts": ts,
        "energy_import_kwh": round(imp, 3), "energy_export_kwh": round(exp, 3),
        "voltage_v": round(v, 2), "current_a": round(i, 3), "active_power_kw": round(p, 3),
        "seq": seq, "reactive_power_kvar": round(q, 3), "power_factor": round(pf, 3),
        "interval_s": m.interval_s,
    }
    if m.phases == 3:
        msg["voltage_b_v"] = round(v + rng.uniform(-1.5, 1.5), 2)
        msg["voltage_c_v"] = round(v + rng.uniform(-1.5, 1.5), 2)
        msg["current_b_a"] = round(i * rng.uniform(0.95, 1.05), 3)
        msg["current_c_a"] = round(i * rng.uniform(0.95, 1.05), 3)
    return msg


def _meter_series(m: _Meter, rng: random.Random) -> list[dict]:
    """Every reading the meter takes (defects applied), in event-time order."""
    if m.interval_s == 60:
        start, steps = FAST_START, FAST_MINUTES
    else:
        start, steps = T0, METER_STEPS
    step_ms = m.interval_s * 1000
    imp = round(rng.uniform(1000, 5000), 3)
    exp = round(rng.uniform(0, 50), 3) if m.pv_kw else 0.0
    out: list[dict] = []
    frozen: dict | None = None
    for n in range(steps):
        ts = start + n * step_ms
        p = profile_kw(m, ts) * (1 + rng.uniform(-0.08, 0.08))
        if n:
            imp += max(p, 0.0) * step_ms / HOUR_MS
            exp += max(-p, 0.0) * step_ms / HOUR_MS
        v = 231.0 + rng.uniform(-2.5, 2.5) - 0.3 * abs(p) / m.phases + 1.2 * _pv(m, ts)
        pf = round(rng.uniform(0.9, 0.99), 3)
        msg = _meter_msg(m, ts, n, imp, exp, p, v, pf, rng)
        if m.device_id == STUCK[0] and ts in STUCK[1]:
            if frozen is None:
                frozen = msg
            else:
                msg = {**frozen, "ts": ts, "seq": n}
        if (m.device_id, ts) == SPIKE_VOLTAGE:
            msg["voltage_v"] = round(msg["voltage_v"] * 10, 2)
        if (m.device_id, ts) == SPIKE_POWER:
            spiked = _meter_msg(m, ts, n, imp, exp, 60.0, v, pf, rng)
            for name in ("active_power_kw", "current_a", "reactive_power_kvar"):
                msg[name] = spiked[name]
        if (m.device_id, ts) == UNDERVOLTAGE:
            msg["voltage_v"] = UNDERVOLTAGE_V
        out.append(msg)
        if (m.device_id, ts + step_ms // 2) == TOO_LATE:
            half = p * step_ms / 2 / HOUR_MS
            out.append({**_meter_msg(m, TOO_LATE[1], 10_000 + n, imp + max(half, 0.0),
                                     exp + max(-half, 0.0), p, v, pf, rng)})
    return out


def _unknown_meter(rng: random.Random) -> list[dict]:
    ghost = _Meter(UNKNOWN[0], "TX-?", 1, "residential", 1.5)
    imp = 777.0
    out = []
    for n, ts in enumerate(UNKNOWN[1]):
        p = profile_kw(ghost, ts)
        imp += p * 0.25
        out.append(_meter_msg(ghost, ts, n, imp, 0.0, p, 229.0 + rng.uniform(-2, 2), 0.95, rng))
    return out


# --- 1-minute and 1 Hz sources --------------------------------------------------------

def _meters_on(feeder: str, ts: int) -> list[_Meter]:
    out = []
    for m in METERS:
        tx = MOVED_TO if m.device_id == "M-3" and ts >= T_MOVE else m.transformer_id
        if TRANSFORMERS[tx][0] == feeder:
            out.append(m)
    return out


def _feeders(rng: random.Random) -> list[dict]:
    out = []
    for f, sub in FEEDERS.items():
        imp = round(rng.uniform(50_000, 90_000), 3)
        exp = round(rng.uniform(10, 20), 3)
        for n in range(FAST_MINUTES):
            ts = FAST_START + n * MINUTE_MS
            p = 1.06 * sum(profile_kw(m, ts) for m in _meters_on(f, ts)) \
                * (1 + rng.uniform(-0.02, 0.02))
            if n:
                imp += max(p, 0.0) / 60.0
            kv = 10.5 + rng.uniform(-0.08, 0.08)
            i = p / (math.sqrt(3) * kv)
            out.append({
                "feeder_id": f, "substation_id": sub, "ts": ts,
                "energy_import_kwh": round(imp, 3), "energy_export_kwh": exp,
                "active_power_kw": round(p, 3), "reactive_power_kvar": round(0.33 * p, 3),
                "current_a": round(i * rng.uniform(1.02, 1.06), 4),
                "current_b_a": round(i * rng.uniform(0.96, 0.99), 4),
                "current_c_a": round(i * rng.uniform(0.97, 1.0), 4),
                "bus_voltage_kv": round(kv, 3), "breaker_closed": True, "seq": n,
            })
    return out


def _aging(hot_spot_c: float) -> float:
    return math.exp(15000.0 / 383.0 - 15000.0 / (hot_spot_c + 273.0))


def _transformers(rng: random.Random) -> list[dict]:
    out = []
    for tx, (_f, kva) in TRANSFORMERS.items():
        ambient = 4.0 + rng.uniform(-1, 1)
        pu0 = {"TX-1": 0.45, "TX-2": 0.7, "TX-3": 0.55}[tx]
        top = ambient + 45.0 * pu0 ** 1.6
        for n in range(FAST_MINUTES):
            ts = FAST_START + n * MINUTE_MS
            overload = tx == OVERLOAD[0] and OVERLOAD[1] <= ts < OVERLOAD[2]
            if overload:  # ramps from ~1.03 to ~1.23 pu over the 20 minutes
                pu = 1.03 + 0.2 * (ts - OVERLOAD[1]) / (OVERLOAD[2] - OVERLOAD[1] - MINUTE_MS) \
                    + rng.uniform(-0.01, 0.01)
            else:
                pu = pu0 + rng.uniform(-0.03, 0.03)
            amb = ambient + rng.uniform(-0.2, 0.2)
            top += (amb + 45.0 * pu ** 1.6 - top) * (1 - math.exp(-1 / 20))
            hot = top + 20.0 * pu ** 1.6
            out.append({
                "transformer_id": tx, "ts": ts, "load_kva": round(pu * kva, 3),
                "load_pu": 7.0 if (tx, ts) == RANGE else round(pu, 4),
                "active_power_kw": round(pu * kva * 0.95, 3),
                "lv_voltage_v": round(232.0 - 5 * pu + rng.uniform(-1, 1), 2),
                "ambient_temp_c": round(amb, 2), "top_oil_temp_c": round(top, 3),
                "hot_spot_temp_c": round(hot, 3), "aging_factor": round(_aging(hot), 9),
                "tap_position": 0, "seq": n,
            })
    return out


def _ess(rng: random.Random) -> list[dict]:
    out = []
    soc = 40.0
    temp = 24.0
    seq = 0
    for start, kw, state in ((ESS_CHARGE, -100.0, "charging"),
                             (ESS_DISCHARGE, 80.0, "discharging")):
        for s in range(ESS_SECONDS):
            p = kw + rng.uniform(-2, 2)
            soc -= p / 3600.0 / 500.0 * 100.0
            temp += 0.004 + rng.uniform(-0.02, 0.02)
            v = 760.0 + 0.4 * soc + rng.uniform(-0.5, 0.5)
            gap = rng.uniform(12, 18)
            vmax = 3.4 + 0.002 * soc + rng.uniform(-0.002, 0.002)
            out.append({
                "ess_id": "ESS-1", "ts": start + s * 1000, "dc_voltage_v": round(v, 2),
                "dc_current_a": round(p * 1000.0 / v, 3), "power_kw": round(p, 3),
                "soc_pct": round(soc, 5), "max_cell_temp_c": round(temp, 3),
                "min_cell_temp_c": round(temp - 2.0 - rng.uniform(0, 0.5), 3),
                "max_cell_voltage_v": round(vmax, 4),
                "min_cell_voltage_v": round(vmax - gap / 1000.0, 4),
                "cell_voltage_gap_mv": round(gap, 2), "state": state, "seq": seq,
            })
            seq += 1
    return out


def _others(rng: random.Random, seed: int) -> list[_Out]:
    out = []
    for sub in REGIONS:
        imp = rng.uniform(1e6, 2e6)
        for n in range(3):
            ts = FAST_START + n * MINUTE_MS
            p = rng.uniform(8, 20)
            imp += p / 60.0
            out.append(_out(SUBSTATION_SCADA, {
                "substation_id": sub, "ts": ts, "hv_voltage_kv": round(110 + rng.uniform(-1, 1), 3),
                "bus_voltage_kv": round(10.5 + rng.uniform(-0.05, 0.05), 3),
                "frequency_hz": round(50 + rng.uniform(-0.02, 0.02), 3),
                "active_power_kw": round(p, 3), "reactive_power_kvar": round(0.3 * p, 3),
                "energy_import_kwh": round(imp, 3), "energy_export_kwh": 0.0,
                "oltc_tap_position": 1, "seq": n,
            }))
    energy = rng.uniform(10_000, 20_000)
    for n in range(5):
        ts = at(2, 12, n)
        irr = 700 + rng.uniform(-30, 30)
        dc = 0.8 * 500 * irr / 1000
        energy += 0.97 * dc / 60
        out.append(_out(PV_INVERTER, {
            "inverter_id": "PV-1", "ts": ts, "irradiance_w_m2": round(irr, 1),
            "module_temp_c": round(35 + rng.uniform(-1, 1), 2), "dc_power_kw": round(dc, 3),
            "ac_power_kw": round(0.97 * dc, 3), "dc_voltage_v": round(650 + rng.uniform(-5, 5), 2),
            "energy_kwh": round(energy, 3), "state": "running", "seq": n,
        }))
    for tx, hours in (("TX-1", (at(1, 22), at(1, 23), at(2, 0), at(2, 1))),
                      ("TX-2", (at(1, 23), at(2, 0)))):
        for n, ts in enumerate(hours):
            out.append(_out(TRANSFORMER_DGA, {
                "transformer_id": tx, "ts": ts, "h2_ppm": round(20 + rng.uniform(0, 10), 2),
                "ch4_ppm": round(8 + rng.uniform(0, 4), 2), "c2h2_ppm": round(rng.uniform(0, 1), 3),
                "c2h4_ppm": round(5 + rng.uniform(0, 3), 2),
                "c2h6_ppm": round(4 + rng.uniform(0, 2), 2),
                "co_ppm": round(200 + rng.uniform(0, 40), 1), "seq": n,
            }))
    out.append(_out(SIM_LABEL, {
        "label_id": f"{seed}-1", "kind": "fault", "type": "transformer_overload",
        "device_id": OVERLOAD[0], "topic": TRANSFORMER_TELEMETRY.topic,
        "start_ts": OVERLOAD[1], "end_ts": OVERLOAD[2],
        "detail": json.dumps({"load_pu_max": 1.23}),
        "seed": seed,
    }))
    out.append(_out(SIM_LABEL, {
        "label_id": f"{seed}-2", "kind": "defect", "type": "duplicate",
        "device_id": EXACT_DUP[0], "topic": METER_READING.topic, "start_ts": EXACT_DUP[1],
        "end_ts": EXACT_DUP[1] + 1, "seed": seed,
    }))
    return out


# --- assembly -------------------------------------------------------------------------

def _after_block(order: list[_Out], ts: int) -> int:
    """Index just after the last message with event time <= ``ts``."""
    return max(i for i, o in enumerate(order) if o.ts <= ts) + 1


def _find(order: list[_Out], topic: str, device: str, ts: int) -> int:
    return next(i for i, o in enumerate(order)
                if o.topic == topic and o.device == device and o.ts == ts)


def scenario(seed: int = 7) -> Scenario:
    """The seeded two-phase scenario (see the module docstring and ``Scenario.defects``)."""
    rng = random.Random(seed)
    mt, ft = METER_READING.topic, FEEDER_SCADA.topic
    registry, registry_dup = _registry(rng)
    meter_msgs = [r for m in METERS for r in _meter_series(m, rng)] + _unknown_meter(rng)
    everything = [
        *registry,
        *(_out(METER_READING, r) for r in meter_msgs),
        *(_out(FEEDER_SCADA, r) for r in _feeders(rng)),
        *(_out(TRANSFORMER_TELEMETRY, r) for r in _transformers(rng)),
        *(_out(ESS_BMS, r) for r in _ess(rng)),
        *_others(rng, seed),
    ]
    phase2_keys = {(mt, GAP[0], t) for t in LATE_METER[1]} | {(ft, *LATE_FEEDER), (mt, *TOO_LATE)}
    dropped = {(mt, GAP[0], GAP[1][0])}
    by_key = {(o.topic, o.device, o.ts): o for o in everything}
    order = sorted((o for o in everything
                    if (o.topic, o.device, o.ts) not in phase2_keys | dropped),
                   key=lambda o: (o.ts, o.rank, o.device))
    defects: list[Defect] = [
        Defect("dim_move", DEVICE_REGISTRY.topic, "M-3", T_MOVE, 1,
               "registry version 2 (change_type move): TX-1/F1/SUB-1/R1 -> TX-3/F2/SUB-2/R2"),
    ]

    # Registry duplicate (same device_id + ts, different content): the first copy wins.
    dup_out = _out(DEVICE_REGISTRY, registry_dup)
    order.insert(_after_block(order, T0), dup_out)
    defects.append(Defect("registry_duplicate", DEVICE_REGISTRY.topic, "M-1", T0, 1,
                          "second copy of version 1 with another serial_number and model"))

    # A re-published version (same version number, later ts): a copy, not a new version.
    m2 = json.loads(next(o.value for o in registry if o.device == "M-2"))
    order.insert(_after_block(order, T_RESEND), _out(DEVICE_REGISTRY, {**m2, "ts": T_RESEND}))
    defects.append(Defect("registry_resend", DEVICE_REGISTRY.topic, "M-2", T_RESEND, 1,
                          "version 1 published again with a later ts and the same content"))

    # Exact duplicate: the same bytes again, after the rest of its event-time block.
    orig = order[_find(order, mt, *EXACT_DUP)]
    order.insert(_after_block(order, EXACT_DUP[1]), orig)
    defects.append(Defect("exact_duplicate", mt, *EXACT_DUP, 1, "same bytes published twice"))

    # An ESS reading received three times (copies 3: two extra copies).
    orig = order[_find(order, ESS_BMS.topic, *ESS_TRIPLICATE)]
    for _ in range(2):
        order.insert(_after_block(order, ESS_TRIPLICATE[1]), orig)
    defects.append(Defect("exact_duplicate", ESS_BMS.topic, *ESS_TRIPLICATE, 1,
                          "same bytes published three times"))

    # Differing duplicate: same device + ts, other values, published later (first wins).
    orig = order[_find(order, mt, *DIFF_DUP)]
    first = json.loads(orig.value)
    second = {**first, "voltage_v": round(first["voltage_v"] + 6.3, 2),
              "current_a": round(first["current_a"] * 1.3, 3),
              "active_power_kw": round(first["active_power_kw"] * 1.3, 3),
              "energy_import_kwh": round(first["energy_import_kwh"] + 0.05, 3)}
    order.insert(_after_block(order, DIFF_DUP[1] + MINUTE_MS), _out(METER_READING, second))
    defects.append(Defect("differing_duplicate", mt, *DIFF_DUP, 1,
                          "second copy with other voltage, current, power and register"))

    # Out of order: a 60 s reading published after the meter's next two readings.
    i = _find(order, mt, *OUT_OF_ORDER)
    moved = order.pop(i)
    j = _find(order, mt, OUT_OF_ORDER[0], OUT_OF_ORDER[1] + 2 * MINUTE_MS)
    order.insert(j + 1, moved)
    defects.append(Defect("out_of_order", mt, *OUT_OF_ORDER, 1,
                          "published after the readings at +60 s and +120 s"))

    # Malformed messages (quarantined), at fixed places.
    good = json.loads(by_key[(mt, "M-1", at(2, 5))].value)
    ess_good = json.loads(next(o for o in everything if o.topic == ESS_BMS.topic).value)
    malformed: list[tuple[int, str, str, bytes, str]] = [
        (at(2, 5), mt, "M-1", by_key[(mt, "M-1", at(2, 5))].value[:40], "truncated JSON"),
        (at(2, 5), mt, "M-2", _dumps([good]), "a JSON array"),
        (at(2, 12), mt, "M-3",
         _dumps({k: v for k, v in {**good, "device_id": "M-3"}.items() if k != "ts"}),
         "missing required field ts"),
        (at(2, 12), mt, "M-4", _dumps({**good, "device_id": "M-4", "voltage_v": "230"}),
         "wrong type: voltage_v is a string"),
        (ESS_CHARGE + 300_000, ESS_BMS.topic, "ESS-1", b'{"ess_id": "ESS-1", "ts": 17',
         "truncated JSON"),
        (ESS_DISCHARGE + 300_000, ESS_BMS.topic, "ESS-1",
         _dumps({**ess_good, "soc_pct": "55.0"}), "wrong type: soc_pct is a string"),
    ]
    for ts, topic, device, value, note in malformed:
        assert not valid(topic, value)
        order.insert(_after_block(order, ts), _Out(ts, 0, device, topic, device.encode(), value))
        defects.append(Defect("malformed", topic, device, ts, 1, note))

    for name, (dev, ts), note in (
        ("spike", SPIKE_VOLTAGE, "voltage_v x10 (also out of range: > 500 V)"),
        ("spike", SPIKE_POWER, "active_power_kw 60 (current and reactive power with it)"),
        ("range", RANGE, "load_pu 7.0 > maximum 5.0"),
        ("undervoltage", UNDERVOLTAGE, f"voltage_v {UNDERVOLTAGE_V} (clean; not qualified)"),
    ):
        topic = TRANSFORMER_TELEMETRY.topic if dev.startswith("TX") else mt
        defects.append(Defect(name, topic, dev, ts, 1, note))
    defects.extend(Defect("stuck", mt, STUCK[0], ts, 1, "same values as the reading before")
                   for ts in STUCK[1][1:])
    defects.extend(Defect("gap", mt, GAP[0], ts, 1, "not published in phase 1")
                   for ts in GAP[1])
    defects.extend(Defect("unknown_device", mt, UNKNOWN[0], ts, 1, "not in the registry")
                   for ts in UNKNOWN[1])
    defects.append(Defect("overload", TRANSFORMER_TELEMETRY.topic, OVERLOAD[0], OVERLOAD[1], 1,
                          "load_pu 1.03-1.23 for 20 minutes (until 2026-03-02 00:10)"))
    defects.append(Defect("feeder_hole", ft, *LATE_FEEDER, 1, "not published in phase 1"))

    # Phase 2: late readings (within the allowed lateness) and one too-late reading.
    phase2: list[_Out] = []
    for dev, ts, name in ((GAP[0], LATE_METER[1][0], "late"), (*LATE_FEEDER, "late"),
                          (GAP[0], LATE_METER[1][1], "late"), (*TOO_LATE, "too_late")):
        topic = ft if dev == LATE_FEEDER[0] else mt
        phase2.append(by_key[(topic, dev, ts)])
        defects.append(Defect(name, topic, dev, ts, 2, "published in phase 2"))

    return Scenario(
        seed=seed,
        phase1=[(o.topic, o.key, o.value) for o in order],
        phase2=[(o.topic, o.key, o.value) for o in phase2],
        watermark_delay_ms=WATERMARK_DELAY_MS,
        allowed_lateness_ms=ALLOWED_LATENESS_MS,
        defects=tuple(defects),
    )


def next_readings(scn: Scenario) -> list[Message]:
    """One more on-time reading of every 15-minute meter, a quarter after its last one.

    New data for a lake that already holds the scenario (the backfill-beside-the-stream
    test publishes it while a backfill runs); the oracle of the scenario with these
    appended to phase 2 describes the result.
    """
    last: dict[str, dict] = {}
    for topic, _, value in scn.phase1:
        if topic == METER_READING.topic and valid(topic, value):
            p = json.loads(value)
            if p["ts"] == METER_END:
                last[p["device_id"]] = p
    out = []
    for _, p in sorted(last.items()):
        nxt = {**p, "ts": METER_END + QUARTER_MS, "seq": p["seq"] + 1,
               "energy_import_kwh": round(p["energy_import_kwh"] + 0.25, 3)}
        o = _out(METER_READING, nxt)
        out.append((o.topic, o.key, o.value))
    return out
