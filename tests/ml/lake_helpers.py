"""The lake slice of the ML lake tests (no test functions here).

Two simulated ESS banks at 10 s for 8 hours across midnight (two ``dt`` partitions), with
one thermal runaway and one cell imbalance in the last hours, explicit gaps (a short one,
a long one, two unusable rows), and two synthetic transformers at 1 minute. The slice is
written once per session into a lake, registry and Redis prefix of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infra.lake import WebHdfs
from infra.settings import GridLakeSettings
from lakehouse.contracts.messages import ESS_BMS, SIM_LABEL, TRANSFORMER_TELEMETRY
from lakehouse.contracts.tables import DWD_TABLES, ODS_TABLES
from lakehouse.time import HOUR_MS, MINUTE_MS, parse_time_ms
from ml.data.lake_source import upsert_rows
from ml.data.sources import DataDescription, Series
from mock_devices.config import FleetConfig
from mock_devices.faults import FaultRequest
from mock_devices.ml_source import SimulatorSource
from ops.bench.lake_slice import dwd_frame, fault_label_frame

START, END = "2024-06-01T20:00", "2024-06-02T04:00"
TRAIN = ("2024-06-01T20:00", "2024-06-02T00:30")
TEST = ("2024-06-02T00:30", "2024-06-02T04:00")
ESS_STEP_MS = 10_000
TOPOLOGY = {
    "ESS-01": {"region_id": "R1", "substation_id": "SUB-1"},
    "ESS-02": {"region_id": "R1", "substation_id": "SUB-2"},
    "TX-1": {"region_id": "R1", "substation_id": "SUB-1"},
    "TX-2": {"region_id": "R1", "substation_id": "SUB-2"},
}
TX_CHANNELS = ("load_kva", "top_oil_temp_c", "hot_spot_temp_c")


def _at(hhmm: str) -> int:
    day = "2024-06-01" if hhmm >= "20:00" else "2024-06-02"
    return parse_time_ms(f"{day}T{hhmm}")


def _index(s: Series, hhmm: str) -> int:
    return int(np.searchsorted(s.ts_ms, _at(hhmm)))


@dataclass
class LakeSlice:
    """What the session wrote, as a LakeSource should return it.

    Attributes:
        settings: The slice's settings (own lake root, Redis prefix, HDFS registry root).
        env: The same as ``GRIDLAKE_*`` variables (for CLI runs).
        spark: The session's Spark session.
        ess: ESS series on the 10 s grid, NaN where no row was written.
        ess_unusable: Per bank, the steps written with ``usable = false``.
        ess_description: Contract and channels of ``ess``.
        tx: Transformer series (1 minute, :data:`TX_CHANNELS`).

    """

    settings: GridLakeSettings
    env: dict[str, str]
    spark: Any
    ess: list[Series]
    ess_unusable: dict[str, np.ndarray]
    ess_description: DataDescription
    tx: list[Series]

    def ess_usable(self) -> list[Series]:
        """``ess`` with the unusable rows as gaps (what ``usable_only`` reads)."""
        out = []
        for s in self.ess:
            v = s.values.copy()
            v[self.ess_unusable[s.device_id]] = np.nan
            out.append(Series(s.device_id, s.ts_ms, v, s.fault_types))
        return out


def ess_series() -> tuple[list[Series], dict[str, np.ndarray], DataDescription]:
    """The simulated banks with the gaps cut in, and the unusable-row masks."""
    faults = (
        FaultRequest("ess_cell_imbalance", "ESS-02", _at("01:00"), 2 * HOUR_MS),
        FaultRequest("ess_thermal_runaway", "ESS-01", _at("02:30")),
    )
    src = SimulatorSource(ESS_BMS, FleetConfig(meters=50, ess_interval_s=10, seed=7), START,
                          8.0, faults=faults, site="lake-test")
    out, unusable = [], {}
    for s in src.load():
        v = s.values.copy()
        bad = np.zeros(len(s), dtype=bool)
        if s.device_id == "ESS-01":
            v[_index(s, "21:00"):_index(s, "21:00") + 3] = np.nan  # short gap: interpolated
            bad[_index(s, "21:30")] = bad[_index(s, "21:30") + 5] = True
        else:
            v[_index(s, "22:00"):_index(s, "22:00") + 40] = np.nan  # long gap: splits
        out.append(Series(s.device_id, s.ts_ms, v, s.fault_types))
        unusable[s.device_id] = bad
    return out, unusable, src.description()


def tx_series() -> list[Series]:
    """Two transformers, 3 hours at 1 minute, seeded random walk readings."""
    rng = np.random.default_rng(3)
    ts = _at("20:00") + np.arange(180, dtype=np.int64) * MINUTE_MS
    out = []
    for dev in ("TX-1", "TX-2"):
        load = 300 + np.cumsum(rng.normal(0, 5, len(ts)))
        oil = 40 + 0.05 * load + rng.normal(0, 0.5, len(ts))
        out.append(Series(dev, ts, np.column_stack([load, oil, oil + 15])))
    return out


def isolated(stack: GridLakeSettings, local_dir: Path) -> tuple[GridLakeSettings,
                                                                dict[str, str]]:
    """Settings and env of a lake, model registry and Redis prefix of the session's own."""
    run = uuid.uuid4().hex[:8]
    root = f"/gridlake/test/ml-{run}"
    settings = stack.model_copy(update={
        "hdfs": stack.hdfs.model_copy(update={"lake_root": f"{root}/lake"}),
        "redis": stack.redis.model_copy(update={"key_prefix": f"tml{run}:"}),
        "spark": stack.spark.model_copy(update={"master": "local[1]"}),
        "ml": stack.ml.model_copy(update={"registry": "hdfs", "hdfs_root": f"{root}/models",
                                          "local_dir": local_dir}),
    })
    env = {
        "GRIDLAKE_HOME": str(stack.home),
        "GRIDLAKE_HDFS__LAKE_ROOT": settings.hdfs.lake_root,
        "GRIDLAKE_REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "GRIDLAKE_ML__REGISTRY": "hdfs",
        "GRIDLAKE_ML__HDFS_ROOT": settings.ml.hdfs_root,
        "GRIDLAKE_ML__LOCAL_DIR": str(local_dir),
    }
    return settings, env


def write_slice(stack: GridLakeSettings, local_dir: Path) -> Iterator[LakeSlice]:
    """Write the slice; yield it; remove its HDFS directory and Redis keys afterwards."""
    import redis

    from infra.spark import spark_scope

    settings, env = isolated(stack, local_dir)
    scope = ExitStack()
    spark = scope.enter_context(spark_scope(settings, "test-ml-lake"))
    try:
        ess, unusable, desc = ess_series()
        tx = tx_series()
        upsert_rows(spark, settings, DWD_TABLES[ESS_BMS.name], dwd_frame(
            settings, ESS_BMS, desc.channels, ess, TOPOLOGY, unusable))
        upsert_rows(spark, settings, DWD_TABLES[TRANSFORMER_TELEMETRY.name], dwd_frame(
            settings, TRANSFORMER_TELEMETRY, TX_CHANNELS, tx, TOPOLOGY))
        upsert_rows(spark, settings, ODS_TABLES[SIM_LABEL.name],
                    fault_label_frame(settings, ESS_BMS, ess, ESS_STEP_MS, seed=7))
        yield LakeSlice(settings, env, spark, ess, unusable, desc, tx)
    finally:
        scope.close()
        with WebHdfs.from_settings(settings) as fs:
            fs.delete(settings.hdfs.lake_root.rsplit("/", 1)[0], recursive=True)
        client = redis.Redis.from_url(settings.redis.url)
        for key in client.scan_iter(match=settings.redis.key_prefix + "*"):
            client.delete(key)
        client.close()
