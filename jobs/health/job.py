"""The health batch job (``gridlake health run``): lake inputs → ``ads_asset_health``.

One run judges every transformer and battery bank for each day of a range:

1. reads, with Spark, the inputs of the range and their look-backs: ``dim_device``
   (current rows), ``dws_transformer`` (grains 1d and 1h), ``dwd_transformer_dga``
   (30 days back; usable rows and those excluded only for their range),
   ``ads_ess_daily``, ``ads_equipment_anomaly`` and the scored steps of
   ``ads_equipment_anomaly_score`` (when they exist), and the day before the range of
   ``ads_asset_health`` (so the first day knows whether its category worsened);
2. computes the rows with :func:`jobs.health.daily.assess` (pure);
3. upserts them into ``ads_asset_health`` (Hudi through Spark with the catalog's writer
   options, :func:`infra.spark.write_options`), deletes the range's rows the run no longer
   produces, and mirrors the range into the serving copy (Redis, the protocol of
   :mod:`infra.serving_store`), whose change event brings worsened categories to the
   API's real-time feed.

Idempotent: rows are keyed by asset and day and depend only on the inputs; a rerun writes
only rows that differ from the stored ones (:func:`reconcile`), so rerunning a range with
the same inputs changes nothing, ``updated_ts`` included, and raises no second alarm; the
serving copy of the range ends equal to the lake's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from infra.lake import WebHdfs, hudi_table_path, lake_path, read_table_config
from infra.serving_store import ServingWriter, connect
from infra.settings import GridLakeSettings
from infra.spark import (
    frame_to_spark,
    read_table,
    spark_scope,
    with_retries,
    write_options,
)
from jobs.common.ddl import quote, sql_string
from jobs.health.ageing import OIL_RISE_LOOKBACK_H
from jobs.health.daily import Inputs, assess
from jobs.health.dga import GASES, LEVEL_LOOKBACK_MS
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.contracts.serving import row_member
from lakehouse.contracts.tables import (
    ADS_ASSET_HEALTH,
    ADS_EQUIPMENT_ANOMALY,
    ADS_EQUIPMENT_ANOMALY_SCORE,
    ADS_ESS_DAILY,
    DIM_DEVICE,
    DWD_TABLES,
    DWS_TRANSFORMER,
    HEALTH_SERVING_SCORE,
)
from lakehouse.time import DAY_MS, HOUR_MS, day_start_ms, dt_of, format_time_ms

logger = logging.getLogger(__name__)

DWD_DGA = DWD_TABLES["transformer_dga"]
ANOMALY_LOOKBACK_MS = 7 * DAY_MS
"""Intervals starting this long before the range are read (a long interval may reach
into it)."""


class HealthJobError(ValueError):
    """A run that cannot proceed (bad range); nothing written."""


@dataclass
class HealthRunResult:
    """What a run read and wrote, with timings.

    Attributes:
        start: First day.
        end: Last day (inclusive).
        assets: Assets judged.
        rows: Rows written (assets × days).
        categories: Rows per category.
        worsened: Rows whose category worsened (feed alarms).
        changed: Rows written to the lake (new or different; a rerun writes none).
        stale: Rows of the range deleted (no longer produced).
        served: Rows written to the serving copy.
        unserved: Stale rows removed from the serving copy.
        read_s: Seconds reading the inputs.
        assess_s: Seconds computing.
        write_s: Seconds writing lake and serving copy.

    """

    start: str
    end: str
    assets: int = 0
    rows: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    worsened: int = 0
    changed: int = 0
    stale: int = 0
    served: int = 0
    unserved: int = 0
    read_s: float = 0.0
    assess_s: float = 0.0
    write_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {k: (round(v, 3) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}


def day_range(start: date, end: date) -> tuple[int, int]:
    """``[start 00:00, end + 1 day 00:00)`` in epoch ms (``end`` inclusive).

    Raises:
        HealthJobError: ``end`` before ``start``.

    """
    if end < start:
        raise HealthJobError(f"end {end} is before start {start}")
    return day_start_ms(start), day_start_ms(end + timedelta(days=1))


# --------------------------------------------------------------------------- reading
def _exists(settings: GridLakeSettings, table: TableContract) -> bool:
    with WebHdfs.from_settings(settings) as fs:
        return read_table_config(fs, lake_path(settings, table.layer, table.name)) is not None


def _ms(col: str) -> str:
    """A TIMESTAMP column as epoch ms (pandas side sees integers, never time zones)."""
    return f"CAST(unix_millis({quote(col)}) AS BIGINT) AS {quote(col)}"


def _between(col: str, lo: int, hi: int) -> str:
    return (f"`dt` >= {sql_string(dt_of(lo))} AND `dt` <= {sql_string(dt_of(hi - 1))} "
            f"AND {quote(col)} >= timestamp_millis(CAST({lo} AS BIGINT)) "
            f"AND {quote(col)} < timestamp_millis(CAST({hi} AS BIGINT))")


def _collect(df: Any) -> pd.DataFrame:
    return df.toPandas()


def read_inputs(spark: Any, settings: GridLakeSettings, start_ms: int, end_ms: int,
                exists: Any = None) -> Inputs:
    """Read the run's input frames.

    A missing table reads as empty, or as None where the factor must tell "never ran"
    from "nothing found" (the anomaly tables).
    """
    have = exists or (lambda t: _exists(settings, t))
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    inputs = Inputs()
    if have(DIM_DEVICE):
        inputs.assets = _collect(read_table(spark, settings, DIM_DEVICE).where(
            "`is_current` AND `device_type` IN ('transformer', 'ess') "
            "AND (`status` IS NULL OR `status` <> 'retired')").select(
            "device_id", "device_type", "region_id", "substation_id", "install_date"))
    if have(DWS_TRANSFORMER):
        dws = read_table(spark, settings, DWS_TRANSFORMER).where(
            "`entity_type` = 'transformer'")
        inputs.tx_daily = _collect(dws.where("`grain` = '1d'").where(
            _between("window_start", start_ms, end_ms)).selectExpr(
            "entity_id", _ms("window_start"), "readings", "aging_hours", "hot_spot_max_c",
            "top_oil_max_c", "load_pu_max", "overload_minutes"))
        inputs.tx_hourly = _collect(dws.where("`grain` = '1h'").where(
            _between("window_start", start_ms - OIL_RISE_LOOKBACK_H * HOUR_MS, end_ms))
            .selectExpr("entity_id", _ms("window_start"), "load_pu_avg", "top_oil_max_c",
                        "ambient_avg_c"))
    if have(DWD_DGA):
        inputs.dga = _collect(read_table(spark, settings, DWD_DGA).where(
            _between("event_ts", start_ms - LEVEL_LOOKBACK_MS, end_ms))
            # a reading excluded only for its range is judged (and its values named)
            .where("`usable` OR (`flag_range` AND NOT `flag_spike` AND NOT `flag_too_late`)")
            .selectExpr(
            "device_id", _ms("event_ts"), *(f"{g}_ppm" for g in GASES)))
    if have(ADS_ESS_DAILY):
        inputs.ess_daily = _collect(read_table(spark, settings, ADS_ESS_DAILY).where(
            _between("day", start_ms, end_ms)).selectExpr(
            "ess_id", _ms("day"), "readings", "cell_gap_max_mv", "cell_gap_avg_mv",
            "cell_temp_max_c", "soc_min_pct", "soc_max_pct", "soc_avg_pct"))
    if have(ADS_EQUIPMENT_ANOMALY):
        inputs.anomalies = _collect(read_table(spark, settings, ADS_EQUIPMENT_ANOMALY).where(
            _between("start_ts", start_ms - ANOMALY_LOOKBACK_MS, end_ms)).selectExpr(
            "device_id", "source", _ms("start_ts"), _ms("end_ts"), "peak_score"))
    if have(ADS_EQUIPMENT_ANOMALY_SCORE):
        inputs.scored = _collect(read_table(spark, settings, ADS_EQUIPMENT_ANOMALY_SCORE)
                                 .where(_between("event_ts", start_ms, end_ms))
                                 .selectExpr("device_id", f"CAST(FLOOR(unix_millis(`event_ts`)"
                                             f" / {DAY_MS}) * {DAY_MS} AS BIGINT) AS `day`")
                                 .groupBy("device_id", "day").count()
                                 .withColumnRenamed("count", "steps"))
    if have(ADS_ASSET_HEALTH):
        prev = _collect(read_table(spark, settings, ADS_ASSET_HEALTH).where(
            _between("day", start_ms - DAY_MS, start_ms)).select(
            "asset_type", "asset_id", "category"))
        inputs.previous = {(str(r["asset_type"]), str(r["asset_id"])): str(r["category"])
                           for r in prev.to_dict("records")}
    return inputs


# --------------------------------------------------------------------------- writing
@dataclass
class Reconciled:
    """A run's rows against the stored rows of its range.

    Attributes:
        changed: Rows new or different from the stored ones (stamped with this run).
        rows: Every row of the run, unchanged ones with their stored ``updated_ts``.
        stale: Stored rows of the range the run no longer produces (written before it).

    """

    changed: pd.DataFrame
    rows: pd.DataFrame
    stale: pd.DataFrame


def reconcile(frame: pd.DataFrame, stored: pd.DataFrame, updated_ms: int) -> Reconciled:
    """Split a run's rows into changed and unchanged ones, and find the stale stored rows.

    A row equal to its stored version in every column but ``updated_ts`` is not rewritten
    and keeps its stored stamp, so that a rerun changes nothing at all: no Hudi commit of
    it, no newer version in the serving copy, no second feed alarm for a worsening.
    """
    key = list(ADS_ASSET_HEALTH.record_key)
    values = [c for c in ADS_ASSET_HEALTH.field_names if c != "updated_ts"]
    if stored.empty:
        return Reconciled(frame, frame, stored.iloc[0:0])

    def norm(df: pd.DataFrame) -> pd.DataFrame:
        out = df[values].astype(object).where(df[values].notna(), None)
        out["day"] = out["day"].astype("int64")
        return out.set_index(key)

    mine, theirs = norm(frame), norm(stored)
    stamps = stored.assign(day=stored["day"].astype("int64")).set_index(key)["updated_ts"]
    same = [k in theirs.index and mine.loc[k].tolist() == theirs.loc[k].tolist()
            for k in mine.index]
    rows = frame.copy()
    rows["updated_ts"] = [int(stamps.loc[k]) if eq else updated_ms
                          for k, eq in zip(mine.index, same, strict=True)]
    changed = rows[[not eq for eq in same]]
    gone = ~theirs.index.isin(mine.index) & (stored["updated_ts"].to_numpy() < updated_ms)
    return Reconciled(changed, rows, stored[gone])


def read_stored(spark: Any, settings: GridLakeSettings, start_ms: int,
                end_ms: int) -> pd.DataFrame:
    """The stored rows of the range (timestamps as epoch ms); empty without a table."""
    table = ADS_ASSET_HEALTH
    if not _exists(settings, table):
        return pd.DataFrame(columns=table.field_names)
    return _collect(read_table(spark, settings, table).where(_between("day", start_ms, end_ms))
                    .selectExpr(*[_ms(f.name) if f.type is FieldType.TIMESTAMP else quote(f.name)
                                  for f in table.fields]))


def write_lake(spark: Any, settings: GridLakeSettings, rec: Reconciled,
               updated_ms: int) -> None:
    """Upsert the changed rows; delete the stale ones.

    A stale row is deleted stamped with this run, so the delete wins over its older version.
    """
    table = ADS_ASSET_HEALTH
    path = hudi_table_path(settings, table)
    if len(rec.changed):
        typed = frame_to_spark(spark, table, rec.changed)
        with_retries(lambda: typed.write.format("hudi").options(
            **write_options(settings, table)).mode("append").save(path), table.name)
    if len(rec.stale):
        gone = frame_to_spark(spark, table, rec.stale.assign(updated_ts=updated_ms))
        with_retries(lambda: gone.write.format("hudi").options(
            **{**write_options(settings, table), "hoodie.datasource.write.operation": "delete"}
        ).mode("append").save(path), table.name)


def publish(settings: GridLakeSettings, frame: pd.DataFrame, stale: list[dict[str, Any]],
            updated_ms: int) -> tuple[int, int]:
    """Mirror the run's rows into the serving copy and drop its stale ones (one batch).

    Every row of the range is sent (a copy that lost rows gets them back); an unchanged
    row carries its stored ``updated_ts``, so the copy keeps it as it is and the feed,
    which sends only rows newer than it has seen, stays quiet.
    """
    table = ADS_ASSET_HEALTH
    rows = [{str(k): v for k, v in r.items()}
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]
    client = connect(settings.redis.url)
    try:
        writer = ServingWriter(client, settings.redis.key_prefix)
        return writer.write(table, HEALTH_SERVING_SCORE[table.name], rows,
                            [row_member(table, r) for r in stale], deletes_before=updated_ms)
    finally:
        client.close()


def run_health(settings: GridLakeSettings, start: date, end: date, *, spark: Any = None,
               serving: bool = True, write: bool = True) -> HealthRunResult:
    """Judge every asset for each day of ``[start, end]`` and write the rows.

    Args:
        settings: Lake, Spark and Redis settings.
        start: First day.
        end: Last day (inclusive).
        spark: A session to use (default: a new one, stopped at the end).
        serving: Also mirror the rows into the serving copy (Redis).
        write: Write at all (``False``: compute and report only).

    Raises:
        HealthJobError: A bad range.

    """
    start_ms, end_ms = day_range(start, end)
    result = HealthRunResult(start.isoformat(), end.isoformat())
    updated_ms = int(time.time() * 1000)
    with spark_scope(settings, "gridlake-health", spark) as session:
        t0 = time.perf_counter()
        inputs = read_inputs(session, settings, start_ms, end_ms)
        result.read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame = assess(inputs, start_ms, end_ms, updated_ms)
        result.assess_s = time.perf_counter() - t0
        result.rows = len(frame)
        result.assets = int(frame[["asset_type", "asset_id"]].drop_duplicates().shape[0])
        result.categories = {str(k): int(v) for k, v in
                             frame["category"].value_counts().sort_index().items()}
        result.worsened = int(frame["worsened"].sum())
        if write:
            t0 = time.perf_counter()
            rec = reconcile(frame, read_stored(session, settings, start_ms, end_ms),
                            updated_ms)
            write_lake(session, settings, rec, updated_ms)
            result.changed, result.stale = len(rec.changed), len(rec.stale)
            if serving:
                stale = rec.stale[["asset_type", "asset_id", "day"]].to_dict("records")
                result.served, result.unserved = publish(
                    settings, rec.rows, [{str(k): v for k, v in r.items()} for r in stale],
                    updated_ms)
            result.write_s = time.perf_counter() - t0
    logger.info("health %s..%s: %d asset(s), %d row(s) %s, %d worsened; read %.1f s, "
                "assess %.1f s, write %.1f s", format_time_ms(start_ms),
                format_time_ms(end_ms), result.assets, result.rows, result.categories,
                result.worsened, result.read_s, result.assess_s, result.write_s)
    return result
