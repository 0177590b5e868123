"""Scoring on the lake (``gridlake ml score``): DWD series → scores and alarms.

One run takes a registered model, reads its message kind's DWD series for a time range
(:class:`ml.data.lake_source.LakeSource`, with the model's channels and grid), scores every
device (:mod:`ml.detection`) and writes

* every scored step to ``ads_equipment_anomaly_score`` and every anomalous interval to
  ``ads_equipment_anomaly`` (Hudi upserts through Spark, with the backfill's writer
  options), and
* every interval as an alarm to the serving copy (Redis, the layout of
  :mod:`lakehouse.contracts.serving`: one hash per key, a sorted-set index by start time,
  a change event).

A run is idempotent: rows are keyed by device, message kind and time, so scoring the same
range again replaces them. Rows of the range (for the devices read) that the run no longer
produces, e.g. an interval whose start moved, are deleted from both tables and from Redis,
so the range ends up exactly as this run computed it, as the backfill does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from infra.lake import WebHdfs, hudi_table_path, lake_path, read_table_config
from infra.serving_store import ServingWriter, connect
from infra.settings import GridLakeSettings
from infra.spark import spark_scope, write_options
from jobs.common.ddl import quote, sql_string
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.serving import row_member
from lakehouse.contracts.tables import (
    ADS_EQUIPMENT_ANOMALY,
    ADS_EQUIPMENT_ANOMALY_SCORE,
    ML_SERVING_SCORE,
)
from lakehouse.time import dt_of, format_time_ms
from ml.data.lake_source import LakeSource, enable_arrow, load_table, upsert_rows
from ml.data.sources import GENERIC_CONTRACT, SourceError, contract_by_name
from ml.detection import AnomalyInterval, DeviceScores, IntervalRules, score_devices
from ml.inference import InputError
from ml.registry import LoadedModel, ModelRegistry

logger = logging.getLogger(__name__)


class ScoringError(ValueError):
    """A scoring run that cannot proceed (no threshold, nothing scorable); nothing written."""


@dataclass(frozen=True)
class LakeScoreRequest:
    """What to score.

    Attributes:
        model_id: Registered model.
        start_ms: First event time (inclusive), epoch ms.
        end_ms: End of the range (exclusive).
        devices: Only these devices (empty: all with readings).
        site: Only devices of this substation.
        threshold: Override of the model's stored threshold.
        rules: How anomalous steps become intervals.
        max_gap: Longest gap (steps) interpolated before scoring.
        write: Write the tables and alarms (``False``: score and report only).

    """

    model_id: str
    start_ms: int
    end_ms: int
    devices: tuple[str, ...] = ()
    site: str | None = None
    threshold: float | None = None
    rules: IntervalRules = field(default_factory=IntervalRules)
    max_gap: int = 6
    write: bool = True


@dataclass
class LakeScoreResult:
    """What a scoring run read, found and wrote, with its timings.

    Attributes:
        model_id: Model used.
        source: Message kind scored.
        threshold: Threshold used.
        start_ms: Range start.
        end_ms: Range end.
        devices: Devices read.
        steps: Grid steps read (all devices).
        steps_scored: Steps with a score.
        intervals: Anomalous intervals found.
        too_short: Devices without a gap-free stretch of one window (nothing scored).
        score_rows: Rows upserted into the score table.
        stale_scores: Score rows of the range deleted (no longer produced).
        stale_intervals: Interval rows of the range deleted.
        alarms_set: Alarms written to the serving copy.
        alarms_removed: Alarms removed from the serving copy.
        read_s: Seconds reading the lake (Spark query to series).
        score_s: Seconds scoring.
        write_s: Seconds writing the tables and alarms.

    """

    model_id: str
    source: str
    threshold: float
    start_ms: int
    end_ms: int
    devices: list[str] = field(default_factory=list)
    steps: int = 0
    steps_scored: int = 0
    intervals: list[AnomalyInterval] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)
    score_rows: int = 0
    stale_scores: int = 0
    stale_intervals: int = 0
    alarms_set: int = 0
    alarms_removed: int = 0
    read_s: float = 0.0
    score_s: float = 0.0
    write_s: float = 0.0

    @property
    def score_steps_per_s(self) -> float:
        """Scoring throughput: grid steps scored per second of model time."""
        return self.steps / self.score_s if self.score_s > 0 else 0.0

    @property
    def steps_per_s(self) -> float:
        """End-to-end throughput: grid steps per second of read + score + write."""
        total = self.read_s + self.score_s + self.write_s
        return self.steps / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (intervals counted, not listed)."""
        return {
            "model_id": self.model_id, "source": self.source, "threshold": self.threshold,
            "start": format_time_ms(self.start_ms), "end": format_time_ms(self.end_ms),
            "devices": self.devices, "steps": self.steps, "steps_scored": self.steps_scored,
            "intervals": len(self.intervals), "too_short": self.too_short,
            "score_rows": self.score_rows, "stale_scores": self.stale_scores,
            "stale_intervals": self.stale_intervals, "alarms_set": self.alarms_set,
            "alarms_removed": self.alarms_removed, "read_s": round(self.read_s, 3),
            "score_s": round(self.score_s, 3), "write_s": round(self.write_s, 3),
            "score_steps_per_s": round(self.score_steps_per_s, 1),
            "steps_per_s": round(self.steps_per_s, 1),
        }


# ------------------------------------------------------------------------------- rows
def score_frame(results: Sequence[DeviceScores], source: str, model_id: str,
                updated_ms: int) -> pd.DataFrame:
    """Rows of ``ads_equipment_anomaly_score`` (timestamps as epoch ms), scored steps only."""
    parts = []
    for d in results:
        keep = d.scored
        ts = d.ts_ms[keep]
        parts.append(pd.DataFrame({
            "device_id": d.device_id, "source": source, "event_ts": ts,
            "model_id": model_id, "threshold": d.threshold, "score": d.scores[keep],
            "anomalous": d.anomalous[keep], "imputed": d.imputed[keep],
            "updated_ts": updated_ms, "dt": [dt_of(int(t)) for t in ts],
        }))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return frame.reindex(columns=ADS_EQUIPMENT_ANOMALY_SCORE.field_names)


def interval_frame(results: Sequence[DeviceScores], source: str, model_id: str,
                   updated_ms: int, topology: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Rows of ``ads_equipment_anomaly`` (timestamps as epoch ms)."""
    rows = [
        {"device_id": i.device_id, "source": source, "start_ts": i.start_ms,
         "end_ts": i.end_ms, "steps": i.steps, "peak_score": i.peak_score,
         "mean_score": i.mean_score, "model_id": model_id, "threshold": d.threshold,
         "ongoing": i.ongoing, "region_id": topology.get(d.device_id, {}).get("region_id"),
         "substation_id": topology.get(d.device_id, {}).get("substation_id"),
         "updated_ts": updated_ms, "dt": dt_of(i.start_ms)}
        for d in results for i in d.intervals
    ]
    return pd.DataFrame(rows, columns=ADS_EQUIPMENT_ANOMALY.field_names)


# ------------------------------------------------------------------------------ lake
def _scope(source: str, devices: Sequence[str], time_col: str, start_ms: int,
           end_ms: int) -> str:
    """SQL predicate: the run's rows of one table (its devices, message kind and range)."""
    in_devices = ", ".join(sql_string(d) for d in devices) or "NULL"
    return (
        f"`dt` >= {sql_string(dt_of(start_ms))} "
        f"AND `dt` <= {sql_string(dt_of(end_ms - 1))} "
        f"AND `source` = {sql_string(source)} AND `device_id` IN ({in_devices}) "
        f"AND {quote(time_col)} >= timestamp_millis(CAST({start_ms} AS BIGINT)) "
        f"AND {quote(time_col)} < timestamp_millis(CAST({end_ms} AS BIGINT))"
    )


def _table_exists(settings: GridLakeSettings, table: TableContract) -> bool:
    with WebHdfs.from_settings(settings) as fs:
        return read_table_config(fs, lake_path(settings, table.layer, table.name)) is not None


def write_table(spark: Any, settings: GridLakeSettings, table: TableContract,
                frame: pd.DataFrame, scope: str, updated_ms: int) -> tuple[int, int]:
    """Upsert ``frame`` into ``table``; delete rows in ``scope`` the frame no longer has.

    Stale rows are deleted only when they were written before this run (``updated_ts``
    below ``updated_ms``), with that stamp as their ordering value so the delete wins.

    Returns:
        (rows upserted, stale rows deleted).

    """
    new = upsert_rows(spark, settings, table, frame)
    if not _table_exists(settings, table):
        return len(frame), 0
    key = list(table.record_key)
    stamp = f"timestamp_millis(CAST({updated_ms} AS BIGINT)) AS `updated_ts`"
    stale = (
        load_table(spark, settings, table).select(*table.field_names).where(scope)
        .where(f"`updated_ts` < timestamp_millis(CAST({updated_ms} AS BIGINT))")
        .join(new.select(*key), on=key, how="left_anti")
        .selectExpr(*[stamp if f == "updated_ts" else quote(f) for f in table.field_names])
        .persist()
    )
    try:
        n = int(stale.count())
        if n:
            stale.write.format("hudi").options(
                **{**write_options(settings, table),
                   "hoodie.datasource.write.operation": "delete"}
            ).mode("append").save(hudi_table_path(settings, table))
    finally:
        stale.unpersist()
    return len(frame), n


# ----------------------------------------------------------------------------- Redis
def publish_alarms(settings: GridLakeSettings, intervals: pd.DataFrame, source: str,
                   devices: Sequence[str], start_ms: int, end_ms: int,
                   stamp_ms: int | None = None) -> tuple[int, int]:
    """Write the run's intervals to the serving copy; remove the range's stale ones.

    With the serving copy's write protocol (:class:`infra.serving_store.ServingWriter`,
    the one the ``gridlake-redis`` connector runs): one transaction (readers never see a
    hash without its index entry) ending with one change event. Ordered by ``updated_ts``
    as in the lake: an alarm never replaces a newer version of its key (a later run's), and
    a stale alarm is removed only when it was computed before this run.

    Args:
        settings: Redis settings.
        intervals: The run's rows of ``ads_equipment_anomaly`` (timestamps as epoch ms).
        source: Message kind scored.
        devices: Devices read: stale alarms are looked for among theirs only.
        start_ms: Range start (index scores).
        end_ms: Range end (exclusive).
        stamp_ms: The run's ``updated_ts``: stale alarms stamped at or after it are kept
            (default: the rows' ``updated_ts``; without rows, every stale alarm goes).

    Returns:
        (alarms written, stale alarms removed).

    """
    table = ADS_EQUIPMENT_ANOMALY
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()}
        for r in intervals.astype(object).where(intervals.notna(), None).to_dict("records")
    ]
    members = {row_member(table, r): r for r in rows}
    if stamp_ms is None:
        stamps = [int(r["updated_ts"]) for r in rows if r.get("updated_ts") is not None]
        stamp_ms = max(stamps, default=None)
    client = connect(settings.redis.url)
    try:
        writer = ServingWriter(client, settings.redis.key_prefix)
        in_scope = set(devices)
        stale = [m for m in writer.members(table, start_ms, end_ms)
                 if m not in members and _member_in_scope(m, source, in_scope)]
        return writer.write(table, ML_SERVING_SCORE[table.name], list(members.values()),
                            stale, deletes_before=stamp_ms)
    finally:
        client.close()


def _member_in_scope(member: str, source: str, devices: set[str]) -> bool:
    parts = member.split("|")
    return len(parts) == 3 and parts[0] in devices and parts[1] == source


# ------------------------------------------------------------------------------- run
def _threshold(loaded: LoadedModel, override: float | None) -> float:
    th = override if override is not None else loaded.metadata.threshold
    if th is None:
        raise ScoringError(f"model {loaded.model_id} has no stored threshold; give one "
                           "(--threshold)")
    if not np.isfinite(th):
        raise ScoringError(f"threshold must be a finite number, got {th}")
    return float(th)


def run_lake_scoring(
    settings: GridLakeSettings,
    request: LakeScoreRequest,
    registry: ModelRegistry | None = None,
    spark: Any = None,
    progress: bool = False,
) -> LakeScoreResult:
    """Score a range of the lake with a registered model and write scores and alarms.

    Args:
        settings: Lake, Spark, Redis and registry settings.
        request: Model, range, devices, threshold and interval rules.
        registry: Model registry (default: the one ``settings.ml`` describes).
        spark: A Spark session to use (default: :func:`infra.spark.spark_scope`).
        progress: Show a progress bar while scoring.

    Raises:
        ml.registry.RegistryError: Unknown or corrupt model, unreachable registry.
        ml.data.sources.SourceError: Bad range, unknown device, no readings, lake unreadable.
        ScoringError: No threshold, or no device has one window of readings.

    """
    reg = registry or ModelRegistry.from_settings(settings)
    loaded = reg.load(request.model_id)
    meta = loaded.metadata
    threshold = _threshold(loaded, request.threshold)
    if meta.data.contract == GENERIC_CONTRACT:
        # trained on a file of the user's own shape: the lake has no table of its channels
        raise SourceError(f"model {meta.model_id} was trained on generic file data, not a "
                          "message contract: it cannot score the lake (score a file: "
                          "gridlake ml score --source file)")
    contract = contract_by_name(meta.data.contract)
    result = LakeScoreResult(meta.model_id, contract.name, threshold, request.start_ms,
                             request.end_ms)
    with spark_scope(settings, "gridlake-ml-score", spark) as session:
        t0 = time.perf_counter()
        source = LakeSource(settings, request.start_ms, request.end_ms, contract,
                            request.devices, request.site, meta.data.channels,
                            meta.data.step_ms, spark=session)
        series = source.load()
        topology = source.topology()
        result.read_s = time.perf_counter() - t0
        result.devices = [s.device_id for s in series]
        result.steps = sum(len(s) for s in series)

        t0 = time.perf_counter()
        try:
            scored = score_devices(loaded.scorer(settings.ml.batch_size), series, threshold,
                                   meta.data.step_ms, request.rules, request.max_gap,
                                   progress)
        except InputError as err:
            raise ScoringError(str(err)) from err
        result.score_s = time.perf_counter() - t0
        result.steps_scored = int(sum(d.scored.sum() for d in scored))
        result.intervals = [i for d in scored for i in d.intervals]
        result.too_short = [d.device_id for d in scored if not d.scored.any()]
        for dev in result.too_short:
            logger.warning("%s: no gap-free stretch of one window (%d steps); not scored",
                           dev, loaded.model.config.window)
        if request.write:
            t0 = time.perf_counter()
            _write(settings, session, request, result, scored, topology)
            result.write_s = time.perf_counter() - t0
    logger.info("scored %d steps of %d device(s) with %s: %d interval(s); read %.1f s, "
                "score %.1f s, write %.1f s", result.steps, len(result.devices),
                meta.model_id, len(result.intervals), result.read_s, result.score_s,
                result.write_s)
    return result


def _write(settings: GridLakeSettings, spark: Any, request: LakeScoreRequest,
           result: LakeScoreResult, scored: list[DeviceScores],
           topology: dict[str, dict[str, str]]) -> None:
    enable_arrow(spark)
    updated_ms = int(time.time() * 1000)
    src, mid = result.source, result.model_id
    rng = (request.start_ms, request.end_ms)
    result.score_rows, result.stale_scores = write_table(
        spark, settings, ADS_EQUIPMENT_ANOMALY_SCORE, score_frame(scored, src, mid, updated_ms),
        _scope(src, result.devices, "event_ts", *rng), updated_ms)
    intervals = interval_frame(scored, src, mid, updated_ms, topology)
    _, result.stale_intervals = write_table(
        spark, settings, ADS_EQUIPMENT_ANOMALY, intervals,
        _scope(src, result.devices, "start_ts", *rng), updated_ms)
    # the serving copy follows the lake: written after the commit it mirrors
    result.alarms_set, result.alarms_removed = publish_alarms(
        settings, intervals, src, result.devices, *rng, stamp_ms=updated_ms)
