"""A slice of DWD rows (and simulator labels) written straight into the lake.

In production the streaming job feeds the DWD tables. Tests and benchmarks of the ML part
need a known slice without starting Flink, so this module writes the rows the job would
write for a set of series: one row per device and present reading, in the DWD table's
columns and units, with topology and quality columns, and with the writer options every
Spark writer of the lake uses (:func:`ml.data.lake_source.upsert_rows`). Fault labels go to
``ods_sim_label`` as the simulator publishes them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from infra.settings import GridLakeSettings
from lakehouse.contracts.messages import SIM_LABEL
from lakehouse.contracts.quality import RULES
from lakehouse.contracts.schema import MessageContract
from lakehouse.contracts.tables import ODS_TABLES
from lakehouse.time import DAY_MS, dt_of
from ml.data.lake_source import dwd_table
from ml.data.sources import Series


def _days(ts_ms: np.ndarray) -> list[str]:
    day = ts_ms // DAY_MS
    names = {int(d): dt_of(int(d) * DAY_MS) for d in np.unique(day)}
    return [names[int(d)] for d in day]


def dwd_frame(
    settings: GridLakeSettings,
    contract: MessageContract,
    channels: Sequence[str],
    series: Sequence[Series],
    topology: Mapping[str, Mapping[str, str]] | None = None,
    unusable: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """DWD rows of ``series`` (timestamps as epoch ms), in the table's column order.

    Args:
        settings: For the Kafka topic name of the ingest columns.
        contract: Message kind of the series.
        channels: The series' channel names (contract fields), in column order.
        series: One per device; steps whose channels are all NaN have no row.
        topology: Device → ``region_id`` / ``substation_id`` / ``feeder_id`` /
            ``transformer_id``.
        unusable: Device → per-step mask of rows flagged ``range`` (``usable = false``).

    """
    spec, table = dwd_table(contract)
    by_source = {m.source.name: m for m in spec.measures}
    now = int(time.time() * 1000)
    parts = []
    offset = 0
    for s in series:
        present = ~np.isnan(s.values).all(axis=1)
        ts = s.ts_ms[present]
        n = len(ts)
        bad = np.zeros(n, dtype=bool)
        if unusable is not None and s.device_id in unusable:
            bad = np.asarray(unusable[s.device_id], dtype=bool)[present]
        topo = dict((topology or {}).get(s.device_id, {}))
        cols: dict[str, Any] = {
            "device_id": s.device_id, "event_ts": ts, "seq": np.arange(n, dtype=np.int64),
            "region_id": topo.get("region_id"), "substation_id": topo.get("substation_id"),
            "feeder_id": topo.get("feeder_id"), "transformer_id": topo.get("transformer_id"),
            "dim_version": 1 if topo else None, "copies": 1,
            **{f"flag_{r.name}": (bad if r.name == "range" else False) for r in RULES},
            "quality_flags": pd.Series(bad).map({True: "range", False: None}).to_numpy(),
            "usable": ~bad,
            "kafka_topic": settings.kafka.topic_prefix + contract.topic, "kafka_partition": 0,
            "kafka_offset": np.arange(offset, offset + n, dtype=np.int64),
            "ingest_ts": ts, "updated_ts": now, "dt": _days(ts),
        }
        offset += n
        for i, name in enumerate(channels):
            m = by_source[name]
            cols[m.name] = s.values[present, i] * m.scale
        parts.append(pd.DataFrame(cols))
    frame = pd.concat(parts, ignore_index=True)
    return frame.reindex(columns=table.field_names)


def fault_label_frame(
    settings: GridLakeSettings, contract: MessageContract, series: Sequence[Series],
    step_ms: int, seed: int = 0,
) -> pd.DataFrame:
    """``ods_sim_label`` rows of every labelled fault run in ``series`` (epoch-ms times)."""
    rows: list[dict[str, Any]] = []
    now = int(time.time() * 1000)
    for s in series:
        if s.fault_types is None:
            continue
        ft = s.fault_types
        change = np.flatnonzero(ft[1:] != ft[:-1]) + 1
        bounds = [0, *change.tolist(), len(ft)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if ft[a] == "":
                continue
            rows.append({
                "label_id": f"F{len(rows) + 1:04d}", "kind": "fault", "type": str(ft[a]),
                "device_id": s.device_id, "topic": contract.topic,
                "start_ts": int(s.ts_ms[a]), "end_ts": int(s.ts_ms[b - 1]) + step_ms,
                "detail": None, "seed": seed,
                "kafka_topic": settings.kafka.topic_prefix + SIM_LABEL.topic,
                "kafka_partition": 0, "kafka_offset": len(rows), "ingest_ts": now,
                "lateness": "on_time", "dt": dt_of(int(s.ts_ms[a])),
            })
    return pd.DataFrame(rows, columns=ODS_TABLES[SIM_LABEL.name].field_names)
