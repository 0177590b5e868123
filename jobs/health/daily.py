"""Rows of ``ads_asset_health`` from the lake's inputs, as pandas frames (no I/O).

:func:`assess` is the whole computation of the batch job between its reads and writes:
the job (:mod:`jobs.health.job`) reads the input tables with Spark into the frames of
:class:`Inputs` and writes what this returns, so it is tested without a lake. Timestamps
are epoch milliseconds throughout.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jobs.health.ageing import (
    OIL_RISE_LOOKBACK_H,
    OilHour,
    TransformerDay,
    hot_spot_factor,
    oil_rise_factor,
    overload_factor,
    thermal_ageing_factor,
)
from jobs.health.dga import GASES, LEVEL_LOOKBACK_MS, GasSample, dga_factors
from jobs.health.ess import EssDay, ess_factors
from jobs.health.factors import Factor, finite
from jobs.health.index import (
    ASSET_TYPES,
    AnomalyInterval,
    age_factor,
    anomaly_factor,
    health_index,
    image_factor,
    worsened,
)
from lakehouse.contracts.quality import dwd_spec
from lakehouse.contracts.tables import ADS_ASSET_HEALTH
from lakehouse.time import DAY_MS, HOUR_MS, dt_of, from_ms

logger = logging.getLogger(__name__)

TX_READINGS_PER_DAY = DAY_MS // (dwd_spec("transformer_telemetry").interval_ms or 60_000)
ESS_READINGS_PER_DAY = DAY_MS // (dwd_spec("ess_bms").interval_ms or 1_000)


def _frame(*cols: str) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in cols})


@dataclass
class Inputs:
    """What the job reads, one frame per source (timestamps as epoch ms).

    Attributes:
        assets: ``dim_device`` current rows of transformers and banks: ``device_id``,
            ``device_type``, ``region_id``, ``substation_id``, ``install_date``.
        tx_daily: ``dws_transformer`` grain 1d: ``entity_id``, ``window_start``,
            ``readings``, ``aging_hours``, ``hot_spot_max_c``, ``top_oil_max_c``,
            ``load_pu_max``, ``overload_minutes``.
        tx_hourly: ``dws_transformer`` grain 1h: ``entity_id``, ``window_start``,
            ``load_pu_avg``, ``top_oil_max_c``, ``ambient_avg_c``.
        dga: ``dwd_transformer_dga``: ``device_id``, ``event_ts`` and the ``<gas>_ppm``
            columns (usable rows and those excluded only for their range: such values
            are named, not dropped).
        ess_daily: ``ads_ess_daily``: ``ess_id``, ``day``, ``readings`` and the statistics.
        anomalies: ``ads_equipment_anomaly``: ``device_id``, ``source``, ``start_ts``,
            ``end_ts``, ``peak_score``; None when the table does not exist.
        scored: Scored steps per device and day: ``device_id``, ``day``, ``steps``; None
            when the score table does not exist.
        previous: (asset type, asset id) → category of the day before the range.

    """

    assets: pd.DataFrame = field(default_factory=lambda: _frame(
        "device_id", "device_type", "region_id", "substation_id", "install_date"))
    tx_daily: pd.DataFrame = field(default_factory=lambda: _frame(
        "entity_id", "window_start", "readings", "aging_hours", "hot_spot_max_c",
        "top_oil_max_c", "load_pu_max", "overload_minutes"))
    tx_hourly: pd.DataFrame = field(default_factory=lambda: _frame(
        "entity_id", "window_start", "load_pu_avg", "top_oil_max_c", "ambient_avg_c"))
    dga: pd.DataFrame = field(default_factory=lambda: _frame(
        "device_id", "event_ts", *(f"{g}_ppm" for g in GASES)))
    ess_daily: pd.DataFrame = field(default_factory=lambda: _frame(
        "ess_id", "day", "readings", "cell_gap_max_mv", "cell_gap_avg_mv", "cell_temp_max_c",
        "soc_min_pct", "soc_max_pct", "soc_avg_pct"))
    anomalies: pd.DataFrame | None = None
    scored: pd.DataFrame | None = None
    previous: Mapping[tuple[str, str], str] = field(default_factory=dict)


def _num(v: Any) -> float | None:
    return float(v) if finite(v) else None


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    return [{str(k): v for k, v in r.items()}
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]


def _by(rows: Iterable[dict[str, Any]], *key: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for r in rows}


class _Samples:
    """One transformer's DGA samples, sorted, for window slices by time."""

    def __init__(self, samples: list[GasSample]) -> None:
        self.samples = sorted(samples, key=lambda s: s.ts_ms)
        self.ts = [s.ts_ms for s in self.samples]

    def window(self, start_ms: int, end_ms: int) -> list[GasSample]:
        return self.samples[bisect.bisect_left(self.ts, start_ms):
                            bisect.bisect_left(self.ts, end_ms)]


def _assets(inputs: Inputs) -> dict[tuple[str, str], dict[str, Any]]:
    """Every asset to judge: the registry's, plus any with data but no registry row."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _records(inputs.assets):
        if r.get("device_type") in ASSET_TYPES:
            out[(r["device_type"], r["device_id"])] = r
    extra = {("transformer", r["entity_id"]) for r in _records(inputs.tx_daily)}
    extra |= {("transformer", r["device_id"]) for r in _records(inputs.dga)}
    extra |= {("ess", r["ess_id"]) for r in _records(inputs.ess_daily)}
    for key in sorted(extra - out.keys()):
        out[key] = {"device_id": key[1], "device_type": key[0], "region_id": None,
                    "substation_id": None, "install_date": None}
    return out


def _tx_day(r: dict[str, Any] | None) -> TransformerDay | None:
    if r is None:
        return None
    return TransformerDay(int(r.get("readings") or 0), int(TX_READINGS_PER_DAY),
                          _num(r.get("aging_hours")), _num(r.get("hot_spot_max_c")),
                          _num(r.get("top_oil_max_c")), _num(r.get("load_pu_max")),
                          _num(r.get("overload_minutes")))


def _ess_day(r: dict[str, Any] | None) -> EssDay | None:
    if r is None:
        return None
    return EssDay(int(r.get("readings") or 0), _num(r.get("cell_gap_max_mv")),
                  _num(r.get("cell_gap_avg_mv")), _num(r.get("cell_temp_max_c")),
                  _num(r.get("soc_min_pct")), _num(r.get("soc_max_pct")),
                  _num(r.get("soc_avg_pct")), int(ESS_READINGS_PER_DAY))


def assess(inputs: Inputs, start_ms: int, end_ms: int, updated_ms: int) -> pd.DataFrame:
    """Rows of ``ads_asset_health`` for every asset and day in ``[start_ms, end_ms)``.

    Args:
        inputs: The input frames (they may hold more than the range: look-backs).
        start_ms: First day (UTC midnight).
        end_ms: End of the range (UTC midnight, exclusive).
        updated_ms: The run's ``updated_ts``.

    Raises:
        ValueError: A range not aligned to days, or empty.

    """
    if start_ms % DAY_MS or end_ms % DAY_MS or end_ms <= start_ms:
        raise ValueError("the range must be whole UTC days, start before end")
    assets = _assets(inputs)
    tx_daily = _by(_records(inputs.tx_daily), "entity_id", "window_start")
    hourly: dict[str, list[OilHour]] = defaultdict(list)
    for r in _records(inputs.tx_hourly):
        hourly[r["entity_id"]].append(OilHour(int(r["window_start"]), _num(r["load_pu_avg"]),
                                              _num(r["top_oil_max_c"]),
                                              _num(r["ambient_avg_c"])))
    for hs in hourly.values():
        hs.sort(key=lambda h: h.start_ms)
    hour_ts = {k: [h.start_ms for h in v] for k, v in hourly.items()}
    dga: dict[str, list[GasSample]] = defaultdict(list)
    for r in _records(inputs.dga):
        dga[r["device_id"]].append(GasSample(int(r["event_ts"]), {
            g: r.get(f"{g}_ppm") for g in GASES}))
    samples = {k: _Samples(v) for k, v in dga.items()}
    ess_daily = _by(_records(inputs.ess_daily), "ess_id", "day")
    intervals: dict[str, list[AnomalyInterval]] | None = None
    if inputs.anomalies is not None:
        intervals = defaultdict(list)
        for r in _records(inputs.anomalies):
            intervals[r["device_id"]].append(AnomalyInterval(
                int(r["start_ts"]), int(r["end_ts"]), float(r["peak_score"] or 0.0),
                str(r["source"])))
    scored: dict[tuple[str, int], int] = {
        (r["device_id"], int(r["day"])): int(r["steps"]) for r in _records(inputs.scored)}

    rows: list[dict[str, Any]] = []
    for (atype, aid), meta in sorted(assets.items()):
        previous = inputs.previous.get((atype, aid))
        for day in range(start_ms, end_ms, DAY_MS):
            factors = _factors(atype, aid, day, meta, tx_daily, hourly, hour_ts, samples,
                               ess_daily, intervals, scored, inputs.scored is not None)
            hi = health_index(atype, factors)
            rows.append({
                "asset_type": atype, "asset_id": aid, "day": day,
                "region_id": meta.get("region_id"), "substation_id": meta.get("substation_id"),
                "score": hi.score, "category": hi.category, "previous_category": previous,
                "worsened": worsened(previous, hi.category), "worst_factor": hi.worst_factor,
                "evidence_pct": hi.evidence_pct, "factors": hi.factors_json(),
                "action": hi.action, "scoring_version": hi.version, "updated_ts": updated_ms,
                "dt": dt_of(day),
            })
            previous = hi.category
    logger.info("assessed %d asset(s) over %d day(s)", len(assets),
                (end_ms - start_ms) // DAY_MS)
    return pd.DataFrame(rows, columns=ADS_ASSET_HEALTH.field_names)


def _factors(atype: str, aid: str, day: int, meta: dict[str, Any],
             tx_daily: dict[Any, dict[str, Any]], hourly: dict[str, list[OilHour]],
             hour_ts: dict[str, list[int]], samples: dict[str, _Samples],
             ess_daily: dict[Any, dict[str, Any]],
             intervals: dict[str, list[AnomalyInterval]] | None,
             scored: dict[tuple[str, int], int], scoring_ran: bool) -> list[Factor]:
    end = day + DAY_MS
    on = from_ms(day).date()
    if atype == "transformer":
        txd = _tx_day(tx_daily.get((aid, day)))
        hs = hourly.get(aid, [])
        ts = hour_ts.get(aid, [])
        hours = hs[bisect.bisect_left(ts, day - OIL_RISE_LOOKBACK_H * HOUR_MS):
                   bisect.bisect_left(ts, end)]
        s = samples.get(aid)
        own = [*dga_factors(s.window(end - LEVEL_LOOKBACK_MS, end) if s else [], end),
               hot_spot_factor(txd), thermal_ageing_factor(txd), overload_factor(txd),
               oil_rise_factor(hours, day_start_ms=day)]
    else:
        own = ess_factors(_ess_day(ess_daily.get((aid, day))))
    mine = None
    if intervals is not None:
        mine = [i for i in intervals.get(aid, []) if i.start_ms < end and i.end_ms > day]
    steps = scored.get((aid, day), 0) if scoring_ran else None
    return [*own, anomaly_factor(mine, steps, day), image_factor(None),
            age_factor(atype, meta.get("install_date"), on)]
