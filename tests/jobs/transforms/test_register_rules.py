"""The register rules of the 15-minute energies: the shared SQL on Spark and Flink, and the oracle.

A meter whose register falls (a decrease that must not become a negative energy), is reset
to 0, and rolls over at its maximum; a meter that only jitters. The SQL of
``jobs.transforms.summary`` (the one definition the stream and the backfill share) is run
on a small input by local Spark and local Flink (batch), without the stack, and compared
with the independent oracle of ``tests.jobs.streaming.lakehouse_oracle`` and with values
computed by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from jobs.transforms import indicators, summary
from jobs.transforms.dialect import SPARK
from lakehouse.contracts.messages import METER_REGISTER_MAX_KWH
from lakehouse.contracts.quality import REGISTER_RULES
from lakehouse.contracts.tables import HIERARCHY
from tests.jobs.streaming import lakehouse_oracle as lo

Q = 900_000
T0 = 1_772_409_600_000  # 2026-03-02T00:00Z
TOP = METER_REGISTER_MAX_KWH


def readings() -> list[dict[str, Any]]:
    """Two readings per interval (at +1 min and +10 min) of four meters, four intervals."""
    registers = {
        # falls by 4.71 kWh in interval 2 (the case), then counts on from there
        "M-FALL": [(1000.0, 1000.5), (1001.0, 1001.2), (996.49, 996.6), (997.0, 997.3)],
        # reset to 0 in interval 2
        "M-RESET": [(5000.0, 5000.4), (5000.8, 5001.0), (0.1, 0.4), (0.9, 1.5)],
        # rolls over at METER_REGISTER_MAX_KWH in interval 2
        "M-ROLL": [(TOP - 2.0, TOP - 1.0), (TOP - 0.5, TOP - 0.2), (0.3, 0.6), (1.0, 1.2)],
        # a re-read 5 Wh lower: jitter, not a decrease
        "M-JITTER": [(10.0, 10.2), (10.3, 10.4), (10.395, 10.395), (10.5, 10.7)],
    }
    rows = []
    for dev, intervals in registers.items():
        for k, values in enumerate(intervals):
            for minute, value in zip((1, 10), values, strict=True):
                rows.append({
                    "device_id": dev, "event_ms": T0 + k * Q + minute * 60_000,
                    "usable": True, "energy_import_kwh": value, "energy_export_kwh": 0.0,
                    "voltage_v": 230.0, **{h: "X" for h in HIERARCHY},
                })
    return rows


# energy_import per meter and interval, and the interval's baseline, by hand
EXPECTED = {
    "M-FALL": [(0.5, "first_reading"), (0.7, "previous_interval"),
               (None, "register_decrease"), (0.7, "previous_interval")],
    "M-RESET": [(0.4, "first_reading"), (0.6, "previous_interval"), (0.4, "register_reset"),
                (1.1, "previous_interval")],
    "M-ROLL": [(1.0, "first_reading"), (0.8, "previous_interval"), (0.8, "register_rollover"),
               (0.6, "previous_interval")],
    "M-JITTER": [(0.2, "first_reading"), (0.2, "previous_interval"),
                 (0.0, "previous_interval"), (0.305, "previous_interval")],
}


def check(rows: list[dict[str, Any]]) -> None:
    """Rows (device_id, window_ms, energy_import_kwh, baseline) equal :data:`EXPECTED`.

    Energies are compared to 1e-6 kWh: near the rollover maximum (1e8 kWh) a double's
    resolution is ~1.5e-8, so differences of registers carry that much noise.
    """
    got: dict[str, list[tuple[float | None, str]]] = {}
    for r in sorted(rows, key=lambda r: (r["device_id"], r["window_ms"])):
        e = r["energy_import_kwh"]
        e = None if e is None or (isinstance(e, float) and math.isnan(e)) else round(e, 6)
        got.setdefault(r["device_id"], []).append((e, r["baseline"]))
    assert got == {d: [(None if e is None else round(e, 6), b) for e, b in v]
                   for d, v in EXPECTED.items()}


def test_the_oracle_applies_the_register_rules() -> None:
    df = pd.DataFrame(readings()).rename(columns={"event_ms": "event_ts"})
    g = lo._register_intervals(df, (TOP, TOP))
    check([{"device_id": r.device_id, "window_ms": r.k, "energy_import_kwh": r.energy_import,
            "baseline": r.baseline} for r in g.itertuples()])


def test_register_rules_are_documented_in_order() -> None:
    # the order of the SQL cases and the oracle's checks: rollover before reset
    assert [r.name for r in REGISTER_RULES] == [
        "register_rollover", "register_reset", "register_decrease"]
    assert [r.excludes for r in REGISTER_RULES] == [False, False, True]
    assert lo.register_energy(5.0, 4.0, 5.004, None) == (0.0, "previous_interval")


def _views() -> list[tuple[str, str]]:
    """(view, SQL) of the meter interval stage and the meter energy ADS rows."""
    return [
        ("intervals", summary.meter_intervals_sql("detail")),
        ("energy", summary.meter_energy_sql("intervals")),
    ]


ADS_SELECT = ("SELECT `device_id`, `window_ms`, `energy_import_kwh`, `load_kw`,"
              " `energy_import_kwh_baseline` AS `baseline` FROM `energy`")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("test-register-rules")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "1").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_runs_the_shared_sql_like_the_oracle(spark: Any) -> None:
    spark.createDataFrame(pd.DataFrame(readings())).createOrReplaceTempView("detail")
    for name, sql in _views():
        spark.sql(sql).createOrReplaceTempView(name)
    rows = [r.asDict() for r in spark.sql(ADS_SELECT).collect()]
    check(rows)
    # the decrease has no load (not a −18.84 kW point); the others have theirs
    fall = {r["window_ms"]: r["load_kw"] for r in rows if r["device_id"] == "M-FALL"}
    assert fall[T0 + 2 * Q] is None and fall[T0 + 3 * Q] == pytest.approx(2.8)
    # the ADS row names the rule in `baseline`
    spark.sql(summary.meter_energy_sql("intervals")).createOrReplaceTempView("meter_energy")
    ads = spark.sql(indicators.meter_energy_15min_sql("meter_energy", SPARK)).collect()
    names = {(r["device_id"], r["baseline"]) for r in ads}
    assert {("M-FALL", "register_decrease"), ("M-RESET", "register_reset"),
            ("M-ROLL", "register_rollover")} <= names


@pytest.mark.slow
def test_flink_runs_the_shared_sql_like_the_oracle() -> None:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    env.get_config().set("parallelism.default", "1")
    df = pd.DataFrame(readings())
    env.create_temporary_view("detail", env.from_pandas(df))
    for name, sql in _views():
        env.create_temporary_view(name, env.sql_query(sql))
    out = env.sql_query(ADS_SELECT).to_pandas()
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v)
             for k, v in r.items()} for r in out.to_dict("records")]
    check(rows)
