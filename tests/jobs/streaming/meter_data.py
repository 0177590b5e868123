"""A fixed, seeded set of meter readings with defects, and its pandas oracle."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pandas as pd

from lakehouse.contracts import FieldType
from lakehouse.contracts.messages import METER_READING

T0_MS = 1_705_276_800_000  # 2024-01-15T00:00:00Z
INTERVAL_MS = 15 * 60 * 1000


@dataclass
class Published:
    """What a test publishes: (key, raw value) pairs and what each should become."""

    messages: list[tuple[str, bytes]]
    valid: list[dict]  # every schema-valid reading, duplicates included
    quarantine_reasons: list[str]


def reading(device: str, ts: int, register: float, seq: int, rng: random.Random) -> dict:
    """One schema-valid meter reading: every field of the contract, plausible values."""
    power = round(rng.uniform(0.2, 3.0), 3)
    msg: dict = {
        "device_id": device,
        "ts": ts,
        "energy_import_kwh": round(register, 4),
        "energy_export_kwh": 0.0,
        "voltage_v": round(rng.uniform(225, 235), 2),
        "current_a": round(power * 1000 / 230, 3),
        "active_power_kw": power,
        "seq": seq,
    }
    for f in METER_READING.fields:  # fields the contract has grown since
        if f.name not in msg:
            msg[f.name] = _PLAUSIBLE[f.type] if f.minimum is None else max(f.minimum, 1)
    assert METER_READING.validate(msg) is None, METER_READING.validate(msg)
    return msg


_PLAUSIBLE = {
    FieldType.STRING: "x",
    FieldType.INT: 60,
    FieldType.BIGINT: 1,
    FieldType.DOUBLE: 1.0,
    FieldType.BOOLEAN: True,
    FieldType.TIMESTAMP: T0_MS,
}


def build(seed: int = 7, meters: int = 3, minutes: int = 95) -> Published:
    """Readings every minute for ``minutes`` per meter, plus defects.

    Defects: one exact duplicate, two readings swapped (out of order), one reading of
    the first interval held back and sent last (late), and three malformed messages.
    """
    rng = random.Random(seed)
    rows: list[dict] = []
    for m in range(meters):
        device = f"MTR-{m + 1:06d}"
        register = rng.uniform(100, 1000)
        for i in range(minutes):
            register += rng.uniform(0.001, 0.06)
            rows.append(reading(device, T0_MS + i * 60_000, register, i, rng))
    rows.sort(key=lambda r: (r["ts"], r["device_id"]))
    order = list(rows)
    order[10], order[11] = order[11], order[10]  # out of order
    late = order.pop(4)  # a first-interval reading, delivered last
    dup = order[20]
    order.insert(25, dup)  # exact duplicate
    order.append(late)
    messages = [(r["device_id"], json.dumps(r).encode()) for r in order]
    bad = [
        ("MTR-000001", b'{"device_id": "MTR-000001", "ts": '),
        ("MTR-000002", json.dumps({k: v for k, v in rows[0].items() if k != "ts"}).encode()),
        ("MTR-000003", json.dumps({**rows[1], "energy_import_kwh": "12.5"}).encode()),
    ]
    for pos, msg in zip((3, 30, 60), bad, strict=True):
        messages.insert(pos, msg)
    return Published(
        messages=messages,
        valid=order,
        quarantine_reasons=["malformed_json", "missing_field:ts", "bad_type:energy_import_kwh"],
    )


def oracle_energy_15min(valid: list[dict]) -> pd.DataFrame:
    """The 15-minute energies, computed independently in pandas from the readings."""
    df = pd.DataFrame(valid).drop_duplicates(subset=["device_id", "ts", "energy_import_kwh"])
    df["window_ms"] = df["ts"] - df["ts"] % INTERVAL_MS
    g = (
        df.groupby(["device_id", "window_ms"])
        .agg(last=("energy_import_kwh", "max"), first=("energy_import_kwh", "min"),
             readings=("ts", "nunique"))
        .reset_index()
        .sort_values(["device_id", "window_ms"])
    )
    prev = g.set_index(["device_id", "window_ms"])["last"]
    energies, baselines = [], []
    for row in g.itertuples():
        p = prev.get((row.device_id, row.window_ms - INTERVAL_MS))
        energies.append(row.last - (p if p is not None else row.first))
        baselines.append("previous_interval" if p is not None else "first_reading")
    g["energy_kwh"] = energies
    g["baseline"] = baselines
    return g
