"""An independent pandas oracle of the lakehouse pipeline for a ``lakehouse_data`` scenario.

``expected(scn)`` computes, from the published messages alone, what every DIM, DWD, DWS
and ADS table must hold once both phases have been processed; ``ods_counts(scn)`` and
``quarantine_count(scn)`` give the ODS row counts. The definitions are the ones written
in ``docs/indicators.md``; nothing here imports the jobs under test (only the contracts,
which say which columns exist and which rule parameters apply).

Frames: the table's columns in contract order without ``updated_ts``, ``ingest_ts``,
``kafka_topic``, ``kafka_partition``, ``kafka_offset`` and ``seq``; rows sorted by the
record key. Integers and timestamps (epoch milliseconds) are ``int64`` when the column is
required and ``Int64`` (nullable) otherwise; doubles are ``float64`` (NaN when empty);
booleans ``bool``; strings ``object`` (None when empty).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pandas as pd

from lakehouse.contracts.messages import DEVICE_REGISTRY, FEEDER_SCADA, MESSAGES, METER_READING
from lakehouse.contracts.quality import (
    DWD_SPECS,
    REGISTER_RESET_KWH,
    REGISTER_ROLLOVER_SHARE,
    REGISTER_TOLERANCE_KWH,
    RULES,
    SPIKE_RATIO,
    DwdSpec,
)
from lakehouse.contracts.schema import FieldType, MessageContract, TableContract
from lakehouse.contracts.tables import (
    ADS_ESS_DAILY,
    ADS_FEEDER_DAILY,
    ADS_LOAD_CURVE,
    ADS_LOAD_DAILY,
    ADS_METER_ENERGY_15MIN,
    ADS_QUALITY_SCORECARD,
    ADS_TRANSFORMER_DAILY,
    ADS_VOLTAGE_DAILY,
    DIM_DEVICE,
    DWD_QUALITY_DAILY,
    DWD_TABLES,
    DWS_ESS,
    DWS_FEEDER,
    DWS_LOAD,
    DWS_TRANSFORMER,
    DWS_VOLTAGE,
    HIERARCHY,
    ODS_TABLES,
)
from tests.jobs.streaming.lakehouse_data import Scenario

EXCLUDED = frozenset(
    {"updated_ts", "ingest_ts", "kafka_topic", "kafka_partition", "kafka_offset", "seq"}
)
"""Columns the oracle does not predict (run-dependent or copy-dependent)."""

QUARTER_MS = 900_000
DAY_MS = 86_400_000
GRAIN_MS = {"1min": 60_000, "15min": 900_000, "1h": 3_600_000, "1d": 86_400_000}
LEVELS = {"meter": "device_id", "transformer": "transformer_id", "feeder": "feeder_id",
          "substation": "substation_id", "region": "region_id"}
"""Entity type of the meter-based summaries → DWD column naming the entity."""
QUALIFIED_MIN_V = 207.0
QUALIFIED_MAX_V = 246.1
INSULATION_LIFE_H = 180_000.0
TRANSFORMER_READING_MS = 60_000
ESS_READING_MS = 1_000
UNKNOWN = "unknown"

_TOPICS: dict[str, MessageContract] = {m.topic: m for m in MESSAGES}


# --- helpers --------------------------------------------------------------------------

def _dt(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))).strftime(
        "%Y-%m-%d")


def _day_ms(dt: str) -> int:
    return int(datetime.strptime(dt, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) * 1000


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _max_present(values: Iterable[Any]) -> Any:
    present = [v for v in values if not _missing(v)]
    return max(present) if present else None


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], df.to_dict("records"))


def _frame(contract: TableContract, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows → the table's predicted frame (contract columns, types, record-key order)."""
    cols = [c for c in contract.field_names if c not in EXCLUDED]
    for r in rows:
        if set(r) != set(cols):
            raise AssertionError(f"{contract.name}: oracle columns differ from the contract: "
                                 f"{sorted(set(r) ^ set(cols))}")
    df = pd.DataFrame(rows, columns=cols)
    for f in contract.fields:
        if f.name not in cols:
            continue
        if f.type in (FieldType.INT, FieldType.BIGINT, FieldType.TIMESTAMP):
            df[f.name] = df[f.name].astype("int64" if f.required else "Int64")
        elif f.type is FieldType.DOUBLE:
            df[f.name] = df[f.name].astype("float64")
        elif f.type is FieldType.BOOLEAN:
            df[f.name] = df[f.name].astype(bool)
        else:
            df[f.name] = df[f.name].astype(object).where(df[f.name].notna(), None)
    return df.sort_values(list(contract.record_key), kind="stable").reset_index(drop=True)


# --- validation / ODS -----------------------------------------------------------------

@dataclass(frozen=True)
class _Valid:
    phase: int
    contract: MessageContract
    payload: dict[str, Any]


def _parse(scn: Scenario) -> tuple[list[_Valid], list[MessageContract]]:
    """Valid messages in arrival order, and the contracts of the quarantined ones."""
    good: list[_Valid] = []
    bad: list[MessageContract] = []
    for phase, (topic, _key, value) in scn.messages:
        contract = _TOPICS[topic]
        try:
            payload = json.loads(value)
        except ValueError:
            bad.append(contract)
            continue
        if isinstance(payload, dict) and contract.validate(payload) is None:
            good.append(_Valid(phase, contract, payload))
        else:
            bad.append(contract)
    return good, bad


def ods_counts(scn: Scenario) -> dict[str, int]:
    """Valid messages (duplicates included) per ODS table name, every ODS table listed."""
    good, _ = _parse(scn)
    counts = {t.name: 0 for t in ODS_TABLES.values()}
    for v in good:
        counts[ODS_TABLES[v.contract.name].name] += 1
    return counts


def quarantine_count(scn: Scenario) -> int:
    """Messages that are not JSON objects conforming to their topic's contract."""
    return len(_parse(scn)[1])


# --- DIM ------------------------------------------------------------------------------

def _dim(good: list[_Valid]) -> list[dict[str, Any]]:
    first: dict[tuple[str, int], dict[str, Any]] = {}
    start: dict[tuple[str, int], int] = {}
    for v in good:
        if v.contract is DEVICE_REGISTRY:
            key = (v.payload["device_id"], v.payload["version"])
            first.setdefault(key, v.payload)
            start[key] = min(start.get(key, v.payload["ts"]), v.payload["ts"])
    order: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for (dev, version), ts in start.items():
        order[dev].append((ts, version))
    rows = []
    for (dev, version), p in first.items():
        mine = (start[(dev, version)], version)
        later = [ts for ts, ver in order[dev] if (ts, ver) > mine]
        valid_to = min(later) if later else None
        row: dict[str, Any] = {"device_id": dev, "valid_from": mine[0], "valid_to": valid_to}
        for f in DEVICE_REGISTRY.fields:
            if f.name not in ("device_id", "ts"):
                row[f.name] = p.get(f.name)
        row["is_current"] = valid_to is None
        rows.append(row)
    return rows


def _dim_at(dim: dict[str, list[dict[str, Any]]], device: str, ts: int) -> dict[str, Any] | None:
    """The device's DIM version valid at ``ts`` (version 1 also covers earlier times)."""
    hits = [d for d in dim.get(device, [])
            if (d["version"] == 1 or ts >= d["valid_from"])
            and (d["valid_to"] is None or ts < d["valid_to"])]
    return max(hits, key=lambda d: d["version"]) if hits else None


# --- DWD ------------------------------------------------------------------------------

def _measures(spec: DwdSpec, payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in spec.measures:
        v = payload.get(m.source.name)
        numeric = m.source.type in (FieldType.INT, FieldType.BIGINT, FieldType.DOUBLE)
        if v is not None and numeric and m.scale != 1.0:
            v = v * m.scale
        out[m.name] = v
    return out


def _dwd(spec: DwdSpec, good: list[_Valid], dim: dict[str, list[dict[str, Any]]],
         scn: Scenario) -> list[dict[str, Any]]:
    msgs = [v for v in good if v.contract is spec.message]
    key_f, ts_f = spec.message.key_field, spec.message.event_time_field
    kept: dict[tuple[str, int], _Valid] = {}
    copies: dict[tuple[str, int], int] = defaultdict(int)
    for v in msgs:
        k = (v.payload[key_f], v.payload[ts_f])
        kept.setdefault(k, v)
        copies[k] += 1
    phase1 = [v.payload[ts_f] for v in msgs if v.phase == 1]
    watermark = max(phase1) - scn.watermark_delay_ms if phase1 else None
    values = {k: _measures(spec, v.payload) for k, v in kept.items()}
    first_ts: dict[str, int] = {}
    for dev, ts in kept:
        first_ts[dev] = min(ts, first_ts.get(dev, ts))
    self_col = f"{spec.device_type}_id" if f"{spec.device_type}_id" in HIERARCHY else None

    rows = []
    for (dev, ts), v in kept.items():
        x = values[(dev, ts)]
        interval = spec.interval_ms if spec.interval_ms is not None \
            else int(v.payload[str(spec.interval_field)]) * 1000
        p = values.get((dev, ts - interval))
        d = _dim_at(dim, dev, ts)
        row: dict[str, Any] = {"device_id": dev, "event_ts": ts, **x}
        for col in HIERARCHY:
            val = d.get(col) if d else None
            row[col] = dev if col == self_col and val is None else val
        row["dim_version"] = d["version"] if d else None
        row["copies"] = copies[(dev, ts)]

        late = too_late = False
        if v.phase == 2 and watermark is not None:
            too_late = ts < watermark - scn.allowed_lateness_ms
            late = not too_late and ts < watermark
        out_of_range = False
        for m in spec.range_checked():
            val, f = x[m.name], m.field
            if val is None:
                continue
            if (f.minimum is not None and val < f.minimum) or \
                    (f.maximum is not None and val > f.maximum):
                out_of_range = True
        spike = p is not None and any(
            x[c] is not None and p[c] is not None
            and abs(x[c] - p[c]) > thr and abs(x[c]) > SPIKE_RATIO * abs(p[c])
            for c, thr in spec.spike.items())
        stuck = p is not None and all(x[c] == p[c] for c in spec.stuck)
        gap = p is None and ts > first_ts[dev]
        flags = {"duplicate": copies[(dev, ts)] > 1, "late": late, "too_late": too_late,
                 "unknown_device": d is None, "range": out_of_range, "spike": spike,
                 "stuck": stuck, "gap": gap}
        for r in RULES:
            row[f"flag_{r.name}"] = flags[r.name]
        row["quality_flags"] = ",".join(r.name for r in RULES if flags[r.name])
        row["usable"] = not (too_late or out_of_range or spike)
        row["dt"] = _dt(ts)
        rows.append(row)
    return rows


# --- quality --------------------------------------------------------------------------

_COUNTS = ("received", "records", "clean", *(r.name for r in RULES), "quarantined")


def _quality(dwd: dict[str, pd.DataFrame], bad: list[MessageContract],
             ingest_dt: str) -> list[dict[str, Any]]:
    acc: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(_COUNTS, 0))
    for source, df in dwd.items():
        for r in _records(df):
            c = acc[(r["dt"], source, r["region_id"] or UNKNOWN)]
            c["received"] += int(r["copies"])
            c["records"] += 1
            c["clean"] += r["quality_flags"] == ""
            c["duplicate"] += int(r["copies"]) - 1
            for rule in RULES:
                if rule.name != "duplicate":
                    c[rule.name] += bool(r[f"flag_{rule.name}"])
    for contract in bad:
        acc[(ingest_dt, contract.name, UNKNOWN)]["quarantined"] += 1
    return [{"dt": dt, "source": s, "region_id": reg, **c} for (dt, s, reg), c in acc.items()]


def _scorecard(quality: pd.DataFrame) -> list[dict[str, Any]]:
    g = quality.groupby(["region_id", "dt"])[list(_COUNTS)].sum().reset_index()
    rows = []
    for r in _records(g):
        row: dict[str, Any] = {k: int(r[k]) for k in _COUNTS}
        row.update(region_id=r["region_id"], day=_day_ms(r["dt"]), dt=r["dt"])
        row["score_pct"] = row["clean"] / (row["received"] + row["quarantined"]) * 100.0
        rows.append(row)
    return rows


# --- register energies (meters and feeders) --------------------------------------------

def register_energy(last: float, first: float, prev: float | None,
                    maximum: float | None) -> tuple[float, str]:
    """One register's interval energy and baseline by the register rules (docs/indicators.md).

    Args:
        last: Largest reading of the interval; ``first`` the smallest.
        first: Smallest reading of the interval.
        prev: Largest reading of the previous interval, None when it has no readings.
        maximum: The register's declared maximum (rollover), if any.

    Returns:
        (energy, baseline): energy NaN when not computed (``register_decrease``).

    """
    if prev is None:
        return last - first, "first_reading"
    if last >= prev:
        return last - prev, "previous_interval"
    if prev - last <= REGISTER_TOLERANCE_KWH:
        return 0.0, "previous_interval"  # jitter of a re-read
    if maximum is not None:
        share = REGISTER_ROLLOVER_SHARE * maximum
        if prev >= maximum - share and last <= share:
            return (maximum - prev) + last, "register_rollover"
    if first <= REGISTER_RESET_KWH:
        return last, "register_reset"
    return math.nan, "register_decrease"


def _register_intervals(usable: pd.DataFrame,
                        maxima: tuple[float | None, float | None] = (None, None)) -> pd.DataFrame:
    """Per device and 15-minute interval: last/first registers and the interval energies.

    ``maxima``: the declared maxima of the import and export registers.
    """
    w = usable.assign(k=usable["event_ts"] - usable["event_ts"] % QUARTER_MS)
    g = w.groupby(["device_id", "k"], sort=True).agg(
        imp_last=("energy_import_kwh", "max"), imp_first=("energy_import_kwh", "min"),
        exp_last=("energy_export_kwh", "max"), exp_first=("energy_export_kwh", "min"),
        readings=("event_ts", "size"),
    ).reset_index()
    rows = _records(g)
    last = {(r["device_id"], r["k"]): r for r in rows}
    ei: list[float] = []
    ee: list[float] = []
    base: list[str] = []
    for r in rows:
        prev = last.get((r["device_id"], r["k"] - QUARTER_MS))
        e_i, b_i = register_energy(r["imp_last"], r["imp_first"],
                                   None if prev is None else prev["imp_last"], maxima[0])
        e_e, _ = register_energy(r["exp_last"], r["exp_first"],
                                 None if prev is None else prev["exp_last"], maxima[1])
        ei.append(e_i)
        ee.append(e_e)
        base.append(b_i)
    return g.assign(energy_import=ei, energy_export=ee, baseline=base)


def _sum(s: pd.Series) -> float:
    """SQL's SUM: NULLs skipped, NULL (NaN) when every value is NULL."""
    return float(s.sum(min_count=1))


def _meter_stage(meters: pd.DataFrame) -> pd.DataFrame:
    """The meter interval stage: energies, load, voltage stats and hierarchy per interval."""
    u = meters[meters["usable"]].copy()
    u["k"] = u["event_ts"] - u["event_ts"] % QUARTER_MS
    u["qualified"] = (u["voltage_v"] >= QUALIFIED_MIN_V) & (u["voltage_v"] <= QUALIFIED_MAX_V)
    extra = u.groupby(["device_id", "k"], sort=True).agg(
        vmin=("voltage_v", "min"), vmax=("voltage_v", "max"), vsum=("voltage_v", "sum"),
        qualified=("qualified", "sum"),
        **{c: (c, _max_present) for c in HIERARCHY if c != "device_id"},
    ).reset_index()
    maxima = (METER_READING.field("energy_import_kwh").maximum,
              METER_READING.field("energy_export_kwh").maximum)
    stage = _register_intervals(u, maxima).merge(extra, on=["device_id", "k"], how="left")
    stage["load_kw"] = (stage["energy_import"] - stage["energy_export"]) / 0.25
    return stage


# --- DWS ------------------------------------------------------------------------------

def _key(entity_type: str, entity_id: str, grain: str, start: int) -> dict[str, Any]:
    return {"entity_type": entity_type, "entity_id": entity_id, "grain": grain,
            "window_start": start, "window_end": start + GRAIN_MS[grain], "dt": _dt(start)}


def _dws_meter(stage: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """dws_load and dws_voltage rows for every level and grain."""
    load_rows: list[dict[str, Any]] = []
    volt_rows: list[dict[str, Any]] = []
    for etype, col in LEVELS.items():
        sub = stage[stage[col].notna()].assign(one=1)
        q = sub.groupby([col, "k"], sort=True).agg(
            energy_import_kwh=("energy_import", _sum), energy_export_kwh=("energy_export", _sum),
            load=("load_kw", _sum), devices=("one", "sum"), readings=("readings", "sum"),
            vmin=("vmin", "min"), vmax=("vmax", "max"), vsum=("vsum", "sum"),
            qualified=("qualified", "sum"),
        ).reset_index().rename(columns={col: "entity_id"})
        for r in _records(q):
            key = _key(etype, r["entity_id"], "15min", int(r["k"]))
            load_rows.append({
                **key, "energy_import_kwh": r["energy_import_kwh"],
                "energy_export_kwh": r["energy_export_kwh"], "avg_load_kw": r["load"],
                "peak_load_kw": r["load"], "valley_load_kw": r["load"], "points": 1,
                "devices": int(r["devices"]),
            })
            volt_rows.append(_volt(key, r))
        for grain in ("1h", "1d"):
            w = q.assign(w=q["k"] - q["k"] % GRAIN_MS[grain])
            agg = w.groupby(["entity_id", "w"], sort=True).agg(
                energy_import_kwh=("energy_import_kwh", _sum),
                energy_export_kwh=("energy_export_kwh", _sum),
                avg=("load", "mean"), peak=("load", "max"), valley=("load", "min"),
                points=("load", "size"), devices=("devices", "max"),
                readings=("readings", "sum"), vmin=("vmin", "min"), vmax=("vmax", "max"),
                vsum=("vsum", "sum"), qualified=("qualified", "sum"),
            ).reset_index()
            for r in _records(agg):
                key = _key(etype, r["entity_id"], grain, int(r["w"]))
                load_rows.append({
                    **key, "energy_import_kwh": r["energy_import_kwh"],
                    "energy_export_kwh": r["energy_export_kwh"], "avg_load_kw": r["avg"],
                    "peak_load_kw": r["peak"], "valley_load_kw": r["valley"],
                    "points": int(r["points"]), "devices": int(r["devices"]),
                })
                volt_rows.append(_volt(key, r))
    return load_rows, volt_rows


def _volt(key: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    return {**key, "readings": int(r["readings"]), "voltage_min_v": r["vmin"],
            "voltage_avg_v": r["vsum"] / r["readings"], "voltage_max_v": r["vmax"],
            "qualified": int(r["qualified"]), "voltage_sum_v": r["vsum"]}


def _windowed(usable: pd.DataFrame, grains: tuple[str, ...]) -> Iterable[
        tuple[str, tuple[str, int], pd.DataFrame]]:
    """(grain, (device, window start), rows) for every window with usable rows."""
    for grain in grains:
        w = usable.assign(w=usable["event_ts"] - usable["event_ts"] % GRAIN_MS[grain])
        for key, rows in w.groupby(["device_id", "w"], sort=True):
            dev, start = cast(tuple[str, int], key)
            yield grain, (str(dev), int(start)), rows


def _dws_transformer(tx: pd.DataFrame) -> list[dict[str, Any]]:
    u = tx[tx["usable"]]
    rows = []
    for grain, (dev, start), r in _windowed(u, ("1min", "15min", "1h", "1d")):
        rows.append({
            **_key("transformer", dev, grain, start), "readings": len(r),
            "load_kva_avg": r["load_kva"].mean(), "load_kva_max": r["load_kva"].max(),
            "load_pu_avg": r["load_pu"].mean(), "load_pu_max": r["load_pu"].max(),
            "top_oil_max_c": r["top_oil_temp_c"].max(),
            "hot_spot_max_c": r["hot_spot_temp_c"].max(),
            "ambient_avg_c": r["ambient_temp_c"].mean(),
            "aging_hours": (r["aging_factor"] * TRANSFORMER_READING_MS / 3_600_000).sum(),
            "overload_minutes": float((r["load_pu"] > 1.0).sum())
            * TRANSFORMER_READING_MS / 60_000,
        })
    return rows


def _dws_ess(ess: pd.DataFrame) -> list[dict[str, Any]]:
    u = ess[ess["usable"]]
    rows = []
    for grain, (dev, start), r in _windowed(u, ("1min", "15min", "1h", "1d")):
        p = r["power_kw"]
        rows.append({
            **_key("ess", dev, grain, start), "readings": len(r),
            "soc_min_pct": r["soc_pct"].min(), "soc_avg_pct": r["soc_pct"].mean(),
            "soc_max_pct": r["soc_pct"].max(),
            "cell_temp_max_c": r["max_cell_temp_c"].max(),
            "cell_temp_avg_c": r["max_cell_temp_c"].mean(),
            "cell_gap_avg_mv": r["cell_voltage_gap_mv"].mean(),
            "cell_gap_max_mv": r["cell_voltage_gap_mv"].max(),
            "charge_kwh": ((-p).clip(lower=0) * ESS_READING_MS / 3_600_000).sum(),
            "discharge_kwh": (p.clip(lower=0) * ESS_READING_MS / 3_600_000).sum(),
        })
    return rows


def _unbalance(a: float, b: float, c: float) -> float:
    mean = (a + b + c) / 3.0
    if mean == 0:
        return 0.0
    return 100.0 * max(abs(a - mean), abs(b - mean), abs(c - mean)) / mean


def _dws_feeder(feeders: pd.DataFrame) -> list[dict[str, Any]]:
    u = feeders[feeders["usable"]].copy()
    u["unbalance"] = [_unbalance(a, b, c) for a, b, c in
                      zip(u["current_a"], u["current_b_a"], u["current_c_a"], strict=True)]
    energy = _register_intervals(u, (FEEDER_SCADA.field("energy_import_kwh").maximum,
                                     FEEDER_SCADA.field("energy_export_kwh").maximum))
    rows = []
    for grain, (dev, start), r in _windowed(u, ("15min", "1h", "1d")):
        e = energy[(energy["device_id"] == dev) & (energy["k"] >= start)
                   & (energy["k"] < start + GRAIN_MS[grain])]
        rows.append({
            **_key("feeder", dev, grain, start), "readings": len(r),
            "energy_import_kwh": _sum(e["energy_import"]),
            "energy_export_kwh": _sum(e["energy_export"]),
            "active_power_avg_kw": r["active_power_kw"].mean(),
            "reactive_power_avg_kvar": r["reactive_power_kvar"].mean(),
            "active_power_max_kw": r["active_power_kw"].max(),
            "unbalance_avg_pct": r["unbalance"].mean(),
            "unbalance_max_pct": r["unbalance"].max(),
            "bus_voltage_avg_v": r["bus_voltage_v"].mean(),
        })
    return rows


# --- ADS ------------------------------------------------------------------------------

def _ads_meter_energy(stage: pd.DataFrame) -> list[dict[str, Any]]:
    return [{
        "device_id": r["device_id"], "window_start": int(r["k"]),
        "window_end": int(r["k"]) + QUARTER_MS, "energy_kwh": r["energy_import"],
        "register_last_kwh": r["imp_last"], "readings": int(r["readings"]),
        "baseline": r["baseline"], "dt": _dt(int(r["k"])),
    } for r in _records(stage)]


def _pct(num: float, den: float) -> float | None:
    return num / den * 100.0 if den > 0 else None


def _ads_load(load: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    curve = [{
        "entity_type": r["entity_type"], "entity_id": r["entity_id"],
        "window_start": r["window_start"], "point": (r["window_start"] % DAY_MS) // QUARTER_MS,
        "load_kw": r["avg_load_kw"], "energy_import_kwh": r["energy_import_kwh"],
        "devices": r["devices"], "dt": r["dt"],
    } for r in _records(load[load["grain"] == "15min"])]
    daily = []
    for r in _records(load[load["grain"] == "1d"]):
        peak, valley, avg = r["peak_load_kw"], r["valley_load_kw"], r["avg_load_kw"]
        daily.append({
            "entity_type": r["entity_type"], "entity_id": r["entity_id"],
            "day": r["window_start"], "energy_import_kwh": r["energy_import_kwh"],
            "energy_export_kwh": r["energy_export_kwh"], "avg_load_kw": avg,
            "peak_load_kw": peak, "valley_load_kw": valley,
            "peak_valley_diff_kw": peak - valley,
            "peak_valley_rate_pct": _pct(peak - valley, peak),
            "load_factor_pct": _pct(avg, peak), "points": r["points"], "dt": r["dt"],
        })
    return curve, daily


def _ads_feeder(feeder: pd.DataFrame, load: pd.DataFrame) -> list[dict[str, Any]]:
    meters = {(r["entity_id"], r["window_start"]): r for r in
              _records(load[(load["entity_type"] == "feeder") & (load["grain"] == "1d")])}
    rows = []
    for f in _records(feeder[feeder["grain"] == "1d"]):
        m = meters.get((f["entity_id"], f["window_start"]))
        meters_export = m["energy_export_kwh"] if m else 0.0
        delivered = m["energy_import_kwh"] if m else 0.0
        supply = f["energy_import_kwh"] - f["energy_export_kwh"] + meters_export
        loss = supply - delivered
        p, q = f["active_power_avg_kw"], f["reactive_power_avg_kvar"]
        rows.append({
            "feeder_id": f["entity_id"], "day": f["window_start"], "supply_kwh": supply,
            "delivered_kwh": delivered, "loss_kwh": loss,
            "line_loss_rate_pct": _pct(loss, supply),
            "power_factor": None if p == 0 and q == 0 else p / math.sqrt(p * p + q * q),
            "unbalance_avg_pct": f["unbalance_avg_pct"],
            "unbalance_max_pct": f["unbalance_max_pct"], "readings": f["readings"],
            "dt": f["dt"],
        })
    return rows


def _ads_voltage(voltage: pd.DataFrame) -> list[dict[str, Any]]:
    return [{
        "entity_type": r["entity_type"], "entity_id": r["entity_id"],
        "day": r["window_start"], "readings": r["readings"], "qualified": r["qualified"],
        "qualification_rate_pct": r["qualified"] / r["readings"] * 100.0,
        "voltage_min_v": r["voltage_min_v"], "voltage_avg_v": r["voltage_avg_v"],
        "voltage_max_v": r["voltage_max_v"], "dt": r["dt"],
    } for r in _records(voltage[voltage["grain"] == "1d"])]


def _ads_transformer(tx: pd.DataFrame) -> list[dict[str, Any]]:
    return [{
        "transformer_id": r["entity_id"], "day": r["window_start"],
        "loading_rate_pct": r["load_pu_max"] * 100.0,
        "avg_loading_pct": r["load_pu_avg"] * 100.0,
        "overload_minutes": r["overload_minutes"], "overloaded": r["overload_minutes"] > 0,
        "hot_spot_max_c": r["hot_spot_max_c"], "top_oil_max_c": r["top_oil_max_c"],
        "aging_hours": r["aging_hours"],
        "loss_of_life_pct": r["aging_hours"] / INSULATION_LIFE_H * 100.0,
        "readings": r["readings"], "dt": r["dt"],
    } for r in _records(tx[tx["grain"] == "1d"])]


def _ads_ess(ess: pd.DataFrame) -> list[dict[str, Any]]:
    cols = ("soc_min_pct", "soc_avg_pct", "soc_max_pct", "cell_temp_max_c", "cell_gap_avg_mv",
            "cell_gap_max_mv", "charge_kwh", "discharge_kwh", "readings", "dt")
    return [{"ess_id": r["entity_id"], "day": r["window_start"], **{c: r[c] for c in cols}}
            for r in _records(ess[ess["grain"] == "1d"])]


# --- entry point ----------------------------------------------------------------------

def expected(scn: Scenario, ingest_dt: str | None = None) -> dict[str, pd.DataFrame]:
    """Every DIM/DWD/DWS/ADS table the pipeline must hold after both phases.

    Args:
        scn: The published scenario.
        ingest_dt: UTC date (yyyy-MM-dd) the test ingested the messages on: the ``dt`` of
            the quarantine counts in ``dwd_quality_daily``. Defaults to today (UTC).

    Returns:
        Table name → predicted frame (see the module docstring for the layout).

    """
    if ingest_dt is None:
        ingest_dt = datetime.now(UTC).strftime("%Y-%m-%d")
    good, bad = _parse(scn)
    out: dict[str, pd.DataFrame] = {}

    dim_rows = _dim(good)
    out[DIM_DEVICE.name] = _frame(DIM_DEVICE, dim_rows)
    dim: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in dim_rows:
        dim[d["device_id"]].append(d)

    dwd: dict[str, pd.DataFrame] = {}
    for spec in DWD_SPECS:
        table = DWD_TABLES[spec.name]
        dwd[spec.name] = out[table.name] = _frame(table, _dwd(spec, good, dim, scn))
    quality = _frame(DWD_QUALITY_DAILY, _quality(dwd, bad, ingest_dt))
    out[DWD_QUALITY_DAILY.name] = quality

    stage = _meter_stage(dwd["meter_reading"])
    load_rows, volt_rows = _dws_meter(stage)
    load = out[DWS_LOAD.name] = _frame(DWS_LOAD, load_rows)
    voltage = out[DWS_VOLTAGE.name] = _frame(DWS_VOLTAGE, volt_rows)
    tx = out[DWS_TRANSFORMER.name] = _frame(
        DWS_TRANSFORMER, _dws_transformer(dwd["transformer_telemetry"]))
    ess = out[DWS_ESS.name] = _frame(DWS_ESS, _dws_ess(dwd["ess_bms"]))
    feeder = out[DWS_FEEDER.name] = _frame(DWS_FEEDER, _dws_feeder(dwd["feeder_scada"]))

    out[ADS_METER_ENERGY_15MIN.name] = _frame(ADS_METER_ENERGY_15MIN, _ads_meter_energy(stage))
    curve, daily = _ads_load(load)
    out[ADS_LOAD_CURVE.name] = _frame(ADS_LOAD_CURVE, curve)
    out[ADS_LOAD_DAILY.name] = _frame(ADS_LOAD_DAILY, daily)
    out[ADS_FEEDER_DAILY.name] = _frame(ADS_FEEDER_DAILY, _ads_feeder(feeder, load))
    out[ADS_VOLTAGE_DAILY.name] = _frame(ADS_VOLTAGE_DAILY, _ads_voltage(voltage))
    out[ADS_TRANSFORMER_DAILY.name] = _frame(ADS_TRANSFORMER_DAILY, _ads_transformer(tx))
    out[ADS_ESS_DAILY.name] = _frame(ADS_ESS_DAILY, _ads_ess(ess))
    out[ADS_QUALITY_SCORECARD.name] = _frame(ADS_QUALITY_SCORECARD, _scorecard(quality))
    return out
