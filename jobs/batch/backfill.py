"""Backfills: recompute DIM, DWD, DWS and ADS from ODS with Spark, using the stream's SQL.

The plan is the streaming job's (:mod:`jobs.transforms.pipeline`) rendered in Spark SQL;
only the input views differ. ``checked_<message>`` is ODS (valid messages, with the
lateness the stream decided when it read them) plus the quarantine rows of that topic; a
row's arrival order is (ingest time, partition, offset), which is what the stream's
``FIRST_VALUE`` saw.

A backfill over ``[start, end)`` (whole UTC days) reads ODS from one day before ``start``
(previous readings and intervals at the boundary), each device's first reading from its
whole history, and the registry in full; it writes only rows of days in the range, and
deletes rows of those days that the recomputation no longer produces, so that the range
ends up exactly as a fresh computation gives it. Writes are Hudi upserts under the same
optimistic concurrency control as the stream's (``lake.concurrency``), so a backfill may
run beside the streaming job (docs/backfill.md). Once every table is written, the Redis
serving copy of the ADS tables is refreshed for the range (:mod:`jobs.batch.serving_refresh`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from infra.lake import hudi_table_path
from infra.settings import GridLakeSettings
from infra.spark import spark_scope, spark_type, with_retries, write_options
from jobs.batch import serving_refresh
from jobs.common.ddl import quote, sql_string
from jobs.streaming import control
from jobs.transforms import detail, pipeline
from jobs.transforms.dialect import ARRIVAL, SPARK, Dialect, SparkDialect
from lakehouse.contracts.messages import DEVICE_REGISTRY, MESSAGES
from lakehouse.contracts.quality import DWD_SPECS
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.contracts.tables import DIM_DEVICE, ODS_TABLES, QUARANTINE, SERVING_SCORE

log = logging.getLogger(__name__)

#: Days of ODS read before the range: previous readings and 15-minute baselines.
MARGIN_DAYS = 1
#: First day a backfill may start: the lake's times are epoch milliseconds, and the day of
#: margin before the range must exist too (a range from year 1 overflowed ``date``).
EARLIEST_START = date(1970, 1, 1) + timedelta(days=MARGIN_DAYS)
#: Device type → the telemetry message kinds it reports.
DEVICE_TYPES: dict[str, frozenset[str]] = {
    t: frozenset(s.name for s in DWD_SPECS if s.device_type == t)
    for t in dict.fromkeys(s.device_type for s in DWD_SPECS)
}


class BackfillError(ValueError):
    """A backfill request that cannot run; nothing was written."""


@dataclass(frozen=True)
class Scope:
    """Which part of the lake a backfill rewrites.

    Attributes:
        device_types: Telemetry of these device types only (empty: all).
        region: Only this region's devices (DIM attribute at event time).
        feeder: Only this feeder's devices.

    """

    device_types: tuple[str, ...] = ()
    region: str | None = None
    feeder: str | None = None

    @property
    def messages(self) -> set[str]:
        """Telemetry message kinds in scope."""
        if not self.device_types:
            return {s.name for s in DWD_SPECS}
        return set().union(*(DEVICE_TYPES[t] for t in self.device_types))

    @property
    def is_partial(self) -> bool:
        """Whether only part of the devices is recomputed."""
        return bool(self.region or self.feeder)


@dataclass(frozen=True)
class BackfillRequest:
    """What to recompute.

    Attributes:
        start: First day (UTC) of the range.
        end: Day after the last (exclusive).
        from_layer: Recompute this layer and everything downstream of it.
        scope: Devices in scope.

    """

    start: date
    end: date
    from_layer: str = "dwd"
    scope: Scope = field(default_factory=Scope)

    @property
    def days(self) -> list[str]:
        """The range's ``dt`` partitions."""
        n = (self.end - self.start).days
        return [(self.start + timedelta(days=i)).isoformat() for i in range(n)]


def validate(request: BackfillRequest, today: date | None = None, *,
             max_days: int | None = None, regions: Collection[str] | None = None,
             feeders: Mapping[str, str | None] | None = None) -> None:
    """Reject a request that cannot run, before anything is read or written.

    Args:
        request: The backfill.
        today: The current UTC day (default: now).
        max_days: Longest range accepted (None: any).
        regions: The regions known (None: not checked), e.g. those of the device registry.
        feeders: Known feeder id → its region (None: not checked).

    Raises:
        BackfillError: Empty, future, too early or too long range, unknown layer, device
            type, region or feeder, or a feeder outside the region.

    """
    today = today or datetime.now(UTC).date()
    if request.end <= request.start:
        raise BackfillError(
            f"empty range: end {request.end} is not after start {request.start}"
        )
    if request.start < EARLIEST_START:
        raise BackfillError(
            f"range starts before {EARLIEST_START} ({request.start}): the lake holds nothing "
            "earlier"
        )
    if request.start > today:
        raise BackfillError(f"range starts in the future ({request.start}; today is {today})")
    if request.end > today + timedelta(days=1):
        raise BackfillError(
            f"range ends in the future ({request.end}; the last day allowed is {today})"
        )
    days = (request.end - request.start).days
    if max_days is not None and days > max_days:
        raise BackfillError(
            f"range of {days} days is longer than {max_days} days (split it into several "
            "backfills)"
        )
    if request.from_layer not in pipeline.LAYERS:
        raise BackfillError(
            f"unknown layer {request.from_layer!r}; choose from {', '.join(pipeline.LAYERS)}"
        )
    unknown = [t for t in request.scope.device_types if t not in DEVICE_TYPES]
    if unknown:
        raise BackfillError(
            f"unknown device type {', '.join(unknown)}; choose from {', '.join(DEVICE_TYPES)}"
        )
    region, feeder = request.scope.region, request.scope.feeder
    if region is not None and regions is not None and region not in regions:
        raise BackfillError(f"unknown region {region!r}; known: {_some(regions)}")
    if feeder is not None and feeders is not None:
        if feeder not in feeders:
            raise BackfillError(f"unknown feeder {feeder!r}")
        if region is not None and feeders[feeder] != region:
            raise BackfillError(
                f"feeder {feeder!r} is in region {feeders[feeder]!r}, not {region!r}"
            )


def _some(names: Collection[str], most: int = 10) -> str:
    """Up to ``most`` of ``names``, sorted, for a message."""
    shown = sorted(names)[:most]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return (", ".join(shown) or "none") + more


def parse_day(text: str, name: str) -> date:
    """A ``YYYY-MM-DD`` day, with an error naming the option."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BackfillError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


def planned_outputs(request: BackfillRequest, d: Dialect = SPARK) -> list[pipeline.Output]:
    """Tables the request rewrites, upstream first.

    A device-type scope keeps the tables fed by those types (every view is still computed
    from all inputs, so a table mixing types, e.g. feeder line loss, stays exact). DIM is
    rebuilt only from the ``dim`` layer and never under a region or feeder scope.
    """
    first = pipeline.LAYERS.index(request.from_layer)
    wanted = request.scope.messages
    out = []
    for o in pipeline.outputs(d):
        if pipeline.LAYERS.index(o.table.layer) < first:
            continue
        if o.table is DIM_DEVICE:
            if not request.scope.is_partial and not request.scope.device_types:
                out.append(o)
        elif o.sources & wanted:
            out.append(o)
    return out


def planned_serving(
    request: BackfillRequest, outputs: Sequence[pipeline.Output] | None = None
) -> list[serving_refresh.ServingTarget]:
    """Serving copies (ADS in Redis) the request refreshes once its tables are written.

    Args:
        request: The backfill.
        outputs: Its planned tables (default: :func:`planned_outputs`).

    """
    outputs = planned_outputs(request) if outputs is None else outputs
    return [
        serving_refresh.ServingTarget(
            o.table, SERVING_SCORE[o.table.name], request.start, request.end,
            where=_scope_filter(o.table, request.scope),
            # like the lake's stale deletes: a partial scope owns only part of the range
            deletes=not request.scope.is_partial,
        )
        for o in outputs if o.table.name in SERVING_SCORE
    ]


# --------------------------------------------------------------------------- progress
@dataclass
class TableResult:
    """What a backfill did to one table.

    ``serving_rows``/``serving_deleted``: rows upserted into / keys removed from the
    table's Redis serving copy (None: the table has none, or it was not refreshed yet).
    """

    table: str
    rows: int = 0
    deleted: int = 0
    partitions: int = 0
    seconds: float = 0.0
    serving_rows: int | None = None
    serving_deleted: int | None = None


Progress = Callable[[TableResult, int, int], None]
"""Called after each table: (result, tables done, tables planned)."""

ServingProgress = Callable[[serving_refresh.ServingResult], None]
"""Called after each serving copy refreshed."""


# ------------------------------------------------------------------------------ inputs
def _epoch_ms(col: str, t: FieldType) -> str:
    """Epoch milliseconds of an ODS column (timestamps are stored as instants)."""
    if t is FieldType.TIMESTAMP:
        return f"unix_millis({quote(col)})"
    return f"CAST({quote(col)} AS BIGINT)"


def _register_inputs(spark: Any, settings: GridLakeSettings, request: BackfillRequest) -> None:
    """``checked_<message>`` and ``first_<spec>`` views over ODS and quarantine."""
    read_from = (request.start - timedelta(days=MARGIN_DAYS)).isoformat()
    end = request.end.isoformat()
    quarantine = spark.read.format("hudi").load(hudi_table_path(settings, QUARANTINE))
    quarantine.createOrReplaceTempView("in_quarantine")
    for m in MESSAGES:
        ods = ODS_TABLES[m.name]
        spark.read.format("hudi").load(hudi_table_path(settings, ods)) \
            .createOrReplaceTempView(f"in_{ods.name}")
        ts = _epoch_ms(m.event_time_field, m.field(m.event_time_field).type)
        in_range = (
            "TRUE" if m.name == DEVICE_REGISTRY.name
            else f"`dt` >= {sql_string(read_from)} AND `dt` < {sql_string(end)}"
        )
        fields = ", ".join(quote(f.name) for f in m.fields)
        nulls = ", ".join(
            f"CAST(NULL AS {spark_type(f.type).simpleString()}) AS {quote(f.name)}"
            for f in m.fields
        )
        arrival = f"struct(`ingest_ts`, `kafka_partition`, `kafka_offset`) AS `{ARRIVAL}`"
        topic = settings.kafka.topic_prefix + m.topic
        spark.sql(
            f"CREATE OR REPLACE TEMPORARY VIEW {quote(pipeline.checked(m.name))} AS\n"
            "SELECT CAST(NULL AS STRING) AS `reason`, CAST(NULL AS STRING) AS `payload`,\n"
            f"  `kafka_topic`, `kafka_partition`, `kafka_offset`, {fields},\n"
            f"  {ts} AS `event_ms`, `ingest_ts`, `lateness`, {arrival}\n"
            f"FROM `in_{ods.name}` WHERE {in_range}\n"
            "UNION ALL\n"
            "SELECT `reason`, `payload`, `kafka_topic`, `kafka_partition`, `kafka_offset`,\n"
            f"  {nulls}, CAST(NULL AS BIGINT) AS `event_ms`, `ingest_ts`,\n"
            f"  CAST(NULL AS STRING) AS `lateness`, {arrival}\n"
            f"FROM `in_quarantine` WHERE `kafka_topic` = {sql_string(topic)}"
            f" AND `dt` >= {sql_string(request.start.isoformat())}"
            f" AND `dt` < {sql_string(end)}"
        )
    for spec in DWD_SPECS:
        ods = ODS_TABLES[spec.name]
        key = quote(spec.message.key_field)
        ts = _epoch_ms(spec.message.event_time_field,
                       spec.message.field(spec.message.event_time_field).type)
        # A gap needs an earlier reading, however old: the first reading of all history.
        spark.sql(
            f"CREATE OR REPLACE TEMPORARY VIEW `history_{spec.name}` AS\n"
            f"SELECT {key} AS `device_id`, {ts} AS `event_ms`"
            f" FROM `in_{ods.name}`"
        )
        spark.sql(
            f"CREATE OR REPLACE TEMPORARY VIEW {quote(pipeline.first_seen(spec.name))} AS\n"
            + detail.first_seen_sql(f"history_{spec.name}", SPARK)
        )


def _register_scope(spark: Any, scope: Scope) -> None:
    """Narrow the detail views to the devices of a region or feeder (DIM at event time)."""
    if not scope.is_partial:
        return
    conds = []
    if scope.region:
        conds.append(f"`region_id` = {sql_string(scope.region)}")
    if scope.feeder:
        conds.append(f"`feeder_id` = {sql_string(scope.feeder)}")
    for spec in DWD_SPECS:
        view = f"detail_{spec.name}"
        rows = spark.table(view)
        # every reading of a device that was in scope at some time in the range, so that its
        # own (meter, transformer ...) summaries are whole
        devices = rows.where(" AND ".join(conds)).select("device_id").distinct()
        rows.join(devices, "device_id", "left_semi").localCheckpoint(eager=True) \
            .createOrReplaceTempView(view)


def register_views(
    spark: Any, settings: GridLakeSettings, request: BackfillRequest, d: Dialect = SPARK
) -> None:
    """Every view of the plan: inputs from the lake, then the pipeline's SQL."""
    _register_inputs(spark, settings, request)
    for name in [pipeline.checked(m.name) for m in MESSAGES] + [
        pipeline.first_seen(s.name) for s in DWD_SPECS
    ]:
        _materialise(spark, name, f"SELECT * FROM {quote(name)}")
    for name, query in pipeline.views(d, first_seen_given=True).items():
        _materialise(spark, name, query)
        if name == f"detail_{DWD_SPECS[-1].name}":
            _register_scope(spark, request.scope)


def _materialise(spark: Any, name: str, query: str) -> None:
    """Compute a view once and replace it by its rows.

    Each view is checkpointed (its lineage cut): table queries then start from computed
    rows instead of re-planning and re-running the whole chain from the Hudi files, and
    plans stay small (Spark's plan strings grow with the depth of nested views).
    """
    df = spark.sql(query).localCheckpoint(eager=True)
    df.createOrReplaceTempView(name)


# ------------------------------------------------------------------------------ writes
def _typed(table: TableContract, query: str) -> str:
    cols = ", ".join(
        f"CAST({quote(f.name)} AS {spark_type(f.type).simpleString()}) AS {quote(f.name)}"
        for f in table.fields
    )
    return f"SELECT {cols} FROM (\n{query}\n) AS q"


def _scope_filter(table: TableContract, scope: Scope) -> str:
    """Rows of entities inside the scope (summaries above it would be partial)."""
    if not scope.is_partial:
        return "TRUE"
    level = "feeder" if scope.feeder else "region"
    names = {f.name for f in table.fields}
    kept = ("meter", "transformer", "ess", "pv", "feeder") if level == "feeder" else (
        "meter", "transformer", "ess", "pv", "feeder", "substation", "region")
    if "entity_type" in names:
        return f"`entity_type` IN ({', '.join(sql_string(k) for k in kept)})"
    if "region_id" in names and table.name.startswith(("dwd_quality", "ads_quality")):
        return "FALSE" if level == "feeder" else f"`region_id` = {sql_string(scope.region or '')}"
    return "TRUE"




def _write_table(
    spark: Any, settings: GridLakeSettings, output: pipeline.Output, request: BackfillRequest,
    as_of_ms: int,
) -> TableResult:
    t0 = time.monotonic()
    table = output.table
    result = TableResult(table.name)
    uri = hudi_table_path(settings, table)
    in_range = "TRUE"
    if "dt" in table.field_names and table is not DIM_DEVICE:
        in_range = (f"`dt` >= {sql_string(request.start.isoformat())} AND "
                    f"`dt` < {sql_string(request.end.isoformat())}")
    keep = _scope_filter(table, request.scope)
    new = spark.sql(_typed(table, output.query)).where(f"({in_range}) AND ({keep})")
    new = new.persist()
    try:
        result.rows = new.count()
        result.partitions = (new.select("dt").distinct().count()
                             if "dt" in table.field_names else 1)
        options = write_options(settings, table)
        if result.rows:
            with_retries(lambda: new.write.format("hudi").options(**options)
                          .mode("append").save(uri), table.name)
        result.deleted = _delete_stale(spark, table, uri, new, f"({in_range}) AND ({keep})",
                                       options, request, as_of_ms)
    finally:
        new.unpersist()
    result.seconds = round(time.monotonic() - t0, 1)
    return result


def _delete_stale(spark: Any, table: TableContract, uri: str, new: Any, where: str,
                  options: dict[str, str], request: BackfillRequest, as_of_ms: int) -> int:
    """Delete keys of the range that the recomputation no longer produces.

    Only rows computed before the snapshot the backfill read are candidates: a row the
    stream wrote since then comes from data this backfill did not see.
    """
    if table is DIM_DEVICE or request.scope.is_partial or "updated_ts" not in table.field_names:
        # partial scopes rewrite a subset of the keys; the rest of the range is not theirs
        return 0
    key = list(table.record_key)
    current = spark.read.format("hudi").load(uri).where(where).where(
        f"`updated_ts` < timestamp_millis(CAST({as_of_ms} AS BIGINT))")
    # a delete takes effect only with an ordering value above the stored row's
    stamp = f"timestamp_millis(CAST({as_of_ms} AS BIGINT)) AS `updated_ts`"
    stale = current.join(new.select(*key), on=key, how="left_anti").selectExpr(
        *[stamp if f == "updated_ts" else quote(f) for f in table.field_names]).persist()
    try:
        n = int(stale.count())
        if n:
            with_retries(lambda: stale.write.format("hudi").options(
                **{**options, "hoodie.datasource.write.operation": "delete"}
            ).mode("append").save(uri), table.name)
    finally:
        stale.unpersist()
    return n




def _check_scope_known(spark: Any, scope: Scope) -> None:
    """A region or feeder that no registry event ever named is a mistake, not a no-op."""
    for col, value in (("region_id", scope.region), ("feeder_id", scope.feeder)):
        if value is None:
            continue
        hits = spark.sql(
            f"SELECT COUNT(*) AS n FROM `dim_versions` WHERE {quote(col)} = {sql_string(value)}"
        ).collect()[0]["n"]
        if not hits:
            raise BackfillError(f"unknown {col.removesuffix('_id')} {value!r}: not in dim_device")


def stream_margin_ms(settings: GridLakeSettings) -> int:
    """How far before "now" a backfill stamps its rows, so that the stream's rows win.

    While the lake's streaming job runs, rows it computed up to two checkpoints (plus slack)
    ago may not be committed yet; a backfill stamped earlier than them loses to them. With
    the job stopped, everything it computed is committed and the margin is 0.
    """
    st = control.status(settings, "lakehouse")
    if not st.running and st.flink_state != "RUNNING":
        return 0
    return 2 * settings.flink.checkpoint_interval_ms + 30_000


def _refresh_serving(
    spark: Any, settings: GridLakeSettings, request: BackfillRequest,
    outputs: Sequence[pipeline.Output], as_of_ms: int, results: list[TableResult],
    on_serving: ServingProgress | None,
) -> None:
    """The serving step: every planned serving copy, also of tables an earlier attempt wrote."""
    by_table = {r.table: r for r in results}

    def record(res: serving_refresh.ServingResult) -> None:
        if res.table in by_table:
            by_table[res.table].serving_rows = res.rows
            by_table[res.table].serving_deleted = res.deleted
        if on_serving is not None:
            on_serving(res)

    serving_refresh.refresh_serving(spark, settings, planned_serving(request, outputs), as_of_ms,
                            on_result=record)


def run_backfill(
    settings: GridLakeSettings,
    request: BackfillRequest,
    spark: Any = None,
    done: Sequence[str] = (),
    on_table: Progress | None = None,
    on_serving: ServingProgress | None = None,
) -> list[TableResult]:
    """Recompute the request's tables, then refresh their serving copies.

    Args:
        settings: Settings (lake, Spark, Redis).
        request: What to recompute (validated here).
        spark: A session to use (default: one is started and stopped).
        done: Tables already written by an earlier attempt of the same job (skipped; when
            that is every table, only the serving copies are refreshed).
        on_table: Progress callback after each table.
        on_serving: Progress callback after each serving copy.

    Returns:
        What was written per table (this attempt's tables), with the serving counts.

    Raises:
        BackfillError: The request is invalid.
        ServingRefreshError: Every table is written but Redis could not be refreshed.

    """
    validate(request)
    results: list[TableResult] = []
    with spark_scope(settings, "gridlake-backfill", spark) as session:
        # Rows are stamped with the time of the snapshot read, less the time a running
        # stream may hold computed rows before committing them (see docs/backfill.md).
        margin_ms = stream_margin_ms(settings)
        as_of_ms = int(time.time() * 1000) - margin_ms
        d = SparkDialect(as_of_ms)
        outputs = planned_outputs(request, d)
        if any(o.table.name not in done for o in outputs):
            register_views(session, settings, request, d)
            _check_scope_known(session, request.scope)
        for i, output in enumerate(outputs, 1):
            if output.table.name in done:
                log.info("%s already written by this job; skipped", output.table.name)
                continue
            res = _write_table(session, settings, output, request, as_of_ms)
            log.info("%s: %d rows in %d partitions, %d stale deleted (%.1f s)",
                     res.table, res.rows, res.partitions, res.deleted, res.seconds)
            results.append(res)
            if on_table is not None:
                on_table(res, i, len(outputs))
        _refresh_serving(session, settings, request, outputs, as_of_ms, results, on_serving)
    return results


