"""The health job on the real lake: inputs written as Hudi tables, the job run twice over
the same range (Spark, HDFS, Redis of the local stack, a lake root and key prefix of its
own). The rows equal the pure computation's, a rerun changes nothing, and a rerun after
a corrected input rewrites only the rows it changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pandas as pd
import pytest
import redis

from infra.lake import hudi_table_path
from infra.settings import GridLakeSettings
from infra.spark import frame_to_spark, read_table, spark_scope, write_options
from jobs.health.daily import assess
from jobs.health.job import DWD_DGA, run_health
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.contracts.serving import index_key
from lakehouse.contracts.tables import (
    ADS_ASSET_HEALTH,
    ADS_ESS_DAILY,
    DIM_DEVICE,
    DWS_TRANSFORMER,
)
from lakehouse.time import DAY_MS, dt_of
from tests.jobs.health.test_daily import DAY0, DAYS, _inputs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAMP = DAY0 + 10 * DAY_MS


@pytest.fixture(scope="module")
def lake(stack: GridLakeSettings) -> Iterator[tuple[GridLakeSettings, Any]]:
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "hdfs": stack.hdfs.model_copy(update={"lake_root": f"/gridlake/test/{run}"}),
        "redis": stack.redis.model_copy(update={"key_prefix": f"t{run}:"}),
    })
    with spark_scope(settings, "test-health") as spark:
        _write_inputs(spark, settings)
        yield settings, spark


def _write(spark: Any, settings: GridLakeSettings, table: TableContract,
           frame: pd.DataFrame, stamp: int = STAMP) -> None:
    full = frame.reindex(columns=table.field_names)
    full["updated_ts"] = stamp
    frame_to_spark(spark, table, full).write.format("hudi").options(
        **write_options(settings, table)).mode("append").save(hudi_table_path(settings, table))


def _write_inputs(spark: Any, settings: GridLakeSettings) -> None:
    i = _inputs()
    dim = i.assets.assign(valid_from=DAY0 - 400 * DAY_MS, version=1, is_current=True,
                          status="in_service")
    _write(spark, settings, DIM_DEVICE, dim)
    daily = i.tx_daily.assign(entity_type="transformer", grain="1d",
                              window_end=i.tx_daily["window_start"] + DAY_MS)
    hourly = i.tx_hourly.assign(entity_type="transformer", grain="1h",
                                window_end=i.tx_hourly["window_start"] + 3_600_000)
    dws = pd.concat([daily, hourly], ignore_index=True)
    dws["dt"] = [dt_of(int(t)) for t in dws["window_start"]]
    _write(spark, settings, DWS_TRANSFORMER, dws)
    dga = i.dga.assign(dt=[dt_of(int(t)) for t in i.dga["event_ts"]], usable=True)
    _write(spark, settings, DWD_DGA, dga)
    ess = i.ess_daily.assign(dt=[dt_of(int(t)) for t in i.ess_daily["day"]])
    _write(spark, settings, ADS_ESS_DAILY, ess)


def _health(spark: Any, settings: GridLakeSettings) -> pd.DataFrame:
    df = read_table(spark, settings, ADS_ASSET_HEALTH).selectExpr(*[
        f"unix_millis(`{f.name}`) AS `{f.name}`" if f.type is FieldType.TIMESTAMP
        else f"`{f.name}`" for f in ADS_ASSET_HEALTH.fields])
    return df.toPandas().sort_values(["asset_type", "asset_id", "day"]).reset_index(drop=True)


def test_job_writes_the_pure_rows_and_reruns_change_nothing(
        lake: tuple[GridLakeSettings, Any]) -> None:
    settings, spark = lake
    start, end = date(2026, 3, 1), date(2026, 3, DAYS)
    first = run_health(settings, start, end, spark=spark)
    assert first.rows == 8 * DAYS and first.stale == 0 and first.worsened >= 1
    stored = _health(spark, settings)
    want = assess(_inputs(), DAY0, DAY0 + DAYS * DAY_MS, 0).sort_values(
        ["asset_type", "asset_id", "day"]).reset_index(drop=True)
    cols = [c for c in ADS_ASSET_HEALTH.field_names if c != "updated_ts"]
    # the registry read from dim_device, the gases from DWD, the summaries from DWS/ADS:
    # the same rows as the computation on the frames they were written from
    pd.testing.assert_frame_equal(stored[cols], want[cols], check_dtype=False)

    # a rerun with the same inputs changes nothing, not even updated_ts
    second = run_health(settings, start, end, spark=spark)
    again = _health(spark, settings)
    assert second.rows == first.rows and second.changed == 0 and second.stale == 0
    pd.testing.assert_frame_equal(again, stored, check_dtype=False)

    # a corrected input (ESS-01's day 2 now shows a 400 mV gap), rerun for days 2–3 only:
    # that day and the next one's previous_category change, nothing else
    fixed = _inputs().ess_daily
    fixed = fixed[(fixed["ess_id"] == "ESS-01") & (fixed["day"] == DAY0 + DAY_MS)]
    _write(spark, settings, ADS_ESS_DAILY, fixed.assign(
        cell_gap_max_mv=400.0, dt=dt_of(DAY0 + DAY_MS)), stamp=STAMP + 1)
    third = run_health(settings, date(2026, 3, 2), end, spark=spark)
    assert third.changed == 2 and third.worsened >= 1
    after = _health(spark, settings)
    moved = after[after["updated_ts"] != stored["updated_ts"]]
    assert sorted(zip(moved["asset_id"], moved["day"], strict=True)) == [
        ("ESS-01", DAY0 + DAY_MS), ("ESS-01", DAY0 + 2 * DAY_MS)]
    day2 = moved[moved["day"] == DAY0 + DAY_MS].iloc[0]
    assert day2["category"] == "critical" and day2["worsened"]

    r = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    try:
        members = r.zrange(index_key(settings.redis.key_prefix, ADS_ASSET_HEALTH), 0, -1)
        assert len(members) == 8 * DAYS  # the serving copy mirrors the range, once
        worse = r.hgetall(f"{settings.redis.key_prefix}ads:asset_health:"
                          f"transformer|TX-00004|{DAY0 + DAY_MS}")
        assert worse.get("worsened") == "true" and worse.get("category") == "critical"
        ess = r.hgetall(f"{settings.redis.key_prefix}ads:asset_health:ess|ESS-01|"
                        f"{DAY0 + DAY_MS}")
        assert ess.get("category") == "critical"  # the copy followed the corrected run
    finally:
        r.close()
