"""Benchmark of backfills (issue 5): ``gridlake bench --only backfill``.

In a lake and Redis prefix of its own (``/gridlake/bench/backfill-<run>``, removed
afterwards unless kept), the simulator's fleet (default: ``settings.simulator.meters``,
seeded) over ``days`` simulated days from :data:`BENCH_START` (the streaming benchmark's
start) is

1. **loaded into ODS** with Spark, not through Kafka and Flink: the fleet's messages are
   generated day by day and turned into ODS rows exactly as the history import makes them
   (:func:`jobs.batch.history.files.check_row` and
   :func:`~jobs.batch.history.rows.stored_row`: same
   columns, ``import:`` topics, ``on_time``, deterministic keys; a rejected message would
   go to quarantine). Each day's rows become Arrow tables per ODS table, staged as local
   Parquet files, and are written to Hudi (``bulk_insert`` into the tables
   :func:`jobs.catalog.create_tables` created, with the backfills' write options) in
   commits of at least ``commit_rows`` rows per table; memory holds one day at most;
2. **backfilled**: :func:`jobs.batch.backfill.run_backfill` recomputes DIM, DWD, DWS and
   ADS over the whole range (from the ``dim`` layer), timed as a whole and per table;
3. **compared with a streaming replay** of the same messages: the replay time at the
   latest measured rate of the streaming job (``gridlake bench --only lakehouse``: from
   ``.gridlake/bench/results.json``, else docs/benchmarks.md) as an *extrapolation*;
   optionally (``stream_minutes``) the rate is also measured here on the first minutes of
   the same fleet, with :func:`ops.bench.streaming.measure_throughput` and an isolated job.
   That starts a Flink job named ``lakehouse`` in this home, as the lakehouse benchmark
   does: not while another one runs.

The serving refresh at the end of the backfill finds an empty serving copy (the run's own
Redis prefix) and, as designed, leaves it to the lake: its time is a few Redis reads.

Figures: rows loaded per second; the backfill's input rows (ODS rows in range) and output
rows (per layer and in all) per second; per-table seconds; the size of the lake; the
extrapolated (or measured) streaming replay time and the ratio of the two.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.lake import LakeError, WebHdfs, hudi_table_path
from infra.settings import GridLakeSettings
from infra.spark import spark_session, with_retries, write_options
from jobs.batch.backfill import BackfillRequest, TableResult, planned_outputs, run_backfill
from jobs.batch.history.files import check_row
from jobs.batch.history.load import epoch_ms_schema, with_timestamps
from jobs.batch.history.rows import file_position, import_topic, payload_json, stored_row
from jobs.catalog import check_tables, create_tables
from jobs.common.ddl import sql_string
from jobs.streaming import control
from lakehouse.contracts.messages import MESSAGES, SIM_LABEL
from lakehouse.contracts.schema import FieldType, MessageContract, TableContract
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE, TABLES
from lakehouse.time import day_start_ms, dt_of
from mock_devices.config import FleetConfig
from mock_devices.fleet import Fleet
from ops.bench.isolation import isolated_run
from ops.bench.streaming import BENCH_START as STREAM_BENCH_START
from ops.bench.streaming import JOB, measure_throughput

log = logging.getLogger(__name__)

#: First simulated day: the streaming benchmark's backlog starts there too.
BENCH_START = date.fromisoformat(STREAM_BENCH_START[:10])
#: Simulated days of the benchmark (issue 5: at least a month).
DEFAULT_DAYS = 30
#: Rows per table converted from dicts to one Arrow chunk (bounds the dicts held).
CHUNK_ROWS = 50_000
#: Staged rows of one ODS table that trigger its Hudi commit.
COMMIT_ROWS = 2_000_000
#: Hudi operation of the ODS load (the tables are new: nothing to upsert).
LOAD_OPERATION = "bulk_insert"
#: Environment variables the harness reads the options from (see :func:`options_from_env`).
ENV_PREFIX = "GRIDLAKE_BENCH_BACKFILL_"
#: Where the streaming figure is written up when results.json does not have it.
DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"

#: Message contracts by topic (without prefix). Fault labels are no telemetry: not loaded.
CONTRACTS: dict[str, MessageContract] = {m.topic: m for m in MESSAGES if m is not SIM_LABEL}
_TABLE_LAYER = {t.name: t.layer for t in TABLES}


# ------------------------------------------------------------------------------- rows
def arrow_schema(table: TableContract) -> Any:
    """The Arrow schema of ``table``'s rows with timestamps as epoch milliseconds.

    The same columns and types as :func:`jobs.batch.history.load.epoch_ms_schema` (the staged
    Parquet files are read with that schema).
    """
    import pyarrow as pa

    types = {
        FieldType.STRING: pa.string(),
        FieldType.INT: pa.int32(),
        FieldType.BIGINT: pa.int64(),
        FieldType.DOUBLE: pa.float64(),
        FieldType.BOOLEAN: pa.bool_(),
        FieldType.TIMESTAMP: pa.int64(),
    }
    return pa.schema([pa.field(f.name, types[f.type]) for f in table.fields])


def batch_position(seed: int, meters: int, topic: str, day: str) -> tuple[int, int]:
    """``(kafka_partition, offset base)`` of one simulated day of one topic.

    A day of a topic is keyed like a history file
    (:func:`jobs.batch.history.rows.file_position`) whose digest is that of the fleet, topic
    and day: the keys are the same on every run of the same fleet, and a row's offset is the
    base plus its index within the day.
    """
    digest = hashlib.sha256(f"gridlake-bench:{seed}:{meters}:{topic}:{day}".encode())
    return file_position(digest.hexdigest())


@dataclass
class DayRows:
    """The ODS (and quarantine) rows of one simulated day.

    Attributes:
        day: The day (``yyyy-MM-dd``, UTC) of its messages' event times.
        tables: Table name → its rows (an Arrow table of :func:`arrow_schema`).
        messages: Messages by topic (without prefix).

    """

    day: str
    tables: dict[str, Any]
    messages: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        """Rows in all tables."""
        return sum(t.num_rows for t in self.tables.values())


class DayBuilder:
    """Turns one day's messages into rows, held as Arrow chunks per table.

    Args:
        day: The day.
        topic_prefix: The lake's Kafka topic prefix (rows get ``import:<prefix><topic>``).
        seed: Fleet seed (part of the keys, :func:`batch_position`).
        meters: Fleet size (part of the keys).
        chunk_rows: Rows of a table held as dicts before they become an Arrow chunk.

    """

    def __init__(self, day: str, topic_prefix: str, seed: int, meters: int,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.day = day
        self.topic_prefix = topic_prefix
        self.seed = seed
        self.meters = meters
        self.chunk_rows = chunk_rows
        self.messages: Counter[str] = Counter()
        self._positions: dict[str, tuple[str, int, int]] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._chunks: dict[str, list[Any]] = {}
        self._tables: dict[str, TableContract] = {}

    def add(self, topic: str, raw: dict[str, Any], ingest_fallback_ms: int) -> int | None:
        """Add one message; returns its event time (None: not readable).

        Args:
            topic: Its topic (without prefix).
            raw: The message as sent.
            ingest_fallback_ms: ``ingest_ts`` of a message without a readable event time
                (the history import's rule: the last readable one before it).

        """
        contract = CONTRACTS[topic]
        values, reason = check_row(contract, raw)
        event = values.get(contract.event_time_field)
        event_ms = event if isinstance(event, int) and not isinstance(event, bool) else None
        if topic not in self._positions:
            partition, base = batch_position(self.seed, self.meters, topic, self.day)
            self._positions[topic] = (import_topic(contract, self.topic_prefix), partition,
                                      base)
        kafka_topic, partition, base = self._positions[topic]
        index = self.messages[topic]
        self.messages[topic] += 1
        table, row = stored_row(
            contract, kafka_topic, partition, base + index, values, reason,
            payload_json(raw) if reason is not None else "",
            event_ms if event_ms is not None else ingest_fallback_ms,
        )
        pending = self._pending.setdefault(table.name, [])
        self._tables[table.name] = table
        pending.append(row)
        if len(pending) >= self.chunk_rows:
            self._convert(table.name)
        return event_ms

    def _convert(self, name: str) -> None:
        import pyarrow as pa

        rows = self._pending.pop(name, [])
        if rows:
            chunk = pa.Table.from_pylist(rows, schema=arrow_schema(self._tables[name]))
            self._chunks.setdefault(name, []).append(chunk)

    def finish(self) -> DayRows:
        """The day's rows, one Arrow table per table written."""
        import pyarrow as pa

        for name in list(self._pending):
            self._convert(name)
        tables = {name: pa.concat_tables(chunks) for name, chunks in self._chunks.items()}
        self._chunks = {}
        return DayRows(self.day, tables, self.messages)


def ods_days(
    records: Iterable[tuple[str, str, Any]],
    topic_prefix: str,
    seed: int,
    meters: int,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[DayRows]:
    """The ODS rows of a fleet's messages, one :class:`DayRows` per event day, in order.

    Args:
        records: ``(topic, key, message)`` in non-decreasing event time
            (:meth:`mock_devices.fleet.Fleet.records`); fault labels are skipped.
        topic_prefix: The lake's Kafka topic prefix.
        seed: Fleet seed (part of the keys).
        meters: Fleet size (part of the keys).
        chunk_rows: See :class:`DayBuilder`.

    """
    builder: DayBuilder | None = None
    last_ms = 0
    for topic, _key, raw in records:
        if topic not in CONTRACTS:
            continue
        if not isinstance(raw, dict):
            raise TypeError(f"{topic}: the benchmark loads message dicts, got {type(raw)}")
        contract = CONTRACTS[topic]
        event = raw.get(contract.event_time_field)
        day = dt_of(event) if isinstance(event, int) and not isinstance(event, bool) \
            else dt_of(last_ms)
        if builder is None or day != builder.day:
            if builder is not None:
                yield builder.finish()
            builder = DayBuilder(day, topic_prefix, seed, meters, chunk_rows)
        event_ms = builder.add(topic, raw, last_ms)
        if event_ms is not None:
            last_ms = event_ms
    if builder is not None:
        yield builder.finish()


# ------------------------------------------------------------------------- arithmetic
def per_second(count: int, seconds: float) -> float:
    """``count / seconds`` rounded to one decimal (0 when no time was measured)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def rows_by_layer(results: Iterable[TableResult]) -> dict[str, int]:
    """Rows written per layer (``dim``, ``dwd``, ``dws``, ``ads``) by a backfill."""
    out: dict[str, int] = {}
    for r in results:
        layer = _TABLE_LAYER.get(r.table, "other")
        out[layer] = out.get(layer, 0) + r.rows
    return out


@dataclass
class LoadFigures:
    """The ODS load.

    Attributes:
        first_day: First simulated day.
        end_day: Day after the last.
        meters: Fleet size.
        messages: Messages generated (every one is an ODS or a quarantine row).
        messages_by_topic: Messages per topic.
        ods_rows: Rows written to ODS.
        ods_rows_by_table: Per ODS table.
        quarantined: Rows written to quarantine.
        commits: Hudi commits.
        operation: Hudi write operation.
        generate_s: Simulation, row building and staging (Python).
        write_s: Hudi writes (Spark).
        seconds: The whole load.
        rows_per_s: Rows (ODS and quarantine) per second of the whole load.
        write_rows_per_s: Rows per second of the Hudi writes alone.

    """

    first_day: str
    end_day: str
    meters: int
    messages: int = 0
    messages_by_topic: dict[str, int] = field(default_factory=dict)
    ods_rows: int = 0
    ods_rows_by_table: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    commits: int = 0
    operation: str = LOAD_OPERATION
    generate_s: float = 0.0
    write_s: float = 0.0
    seconds: float = 0.0
    rows_per_s: float = 0.0
    write_rows_per_s: float = 0.0

    def finish(self, seconds: float) -> None:
        """Set the total time and the rates."""
        self.seconds = round(seconds, 1)
        self.generate_s = round(self.generate_s, 1)
        self.write_s = round(self.write_s, 1)
        rows = self.ods_rows + self.quarantined
        self.rows_per_s = per_second(rows, seconds)
        self.write_rows_per_s = per_second(rows, self.write_s)


@dataclass
class BackfillFigures:
    """The backfill over the loaded range.

    Attributes:
        from_layer: First layer recomputed.
        tables: Tables written.
        rows_read: ODS rows in the range (its input).
        rows_written: Rows written in all tables.
        rows_by_layer: Rows written per layer.
        deleted: Stale rows deleted (none in a fresh lake).
        seconds: The whole :func:`run_backfill` call.
        views_s: Reading ODS and computing the plan's views, before the first table.
        serving_s: The serving refresh after the last table.
        input_rows_per_s: ``rows_read / seconds``.
        output_rows_per_s: ``rows_written / seconds``.
        per_table: Table → ``{rows, partitions, seconds}``, in the order written.

    """

    from_layer: str
    tables: int
    rows_read: int
    rows_written: int
    rows_by_layer: dict[str, int]
    deleted: int
    seconds: float
    views_s: float
    serving_s: float
    input_rows_per_s: float
    output_rows_per_s: float
    per_table: dict[str, dict[str, float]]


def backfill_figures(
    from_layer: str, results: list[TableResult], rows_read: int, seconds: float,
    views_s: float, serving_s: float,
) -> BackfillFigures:
    """The figures of one backfill from its per-table results and timings."""
    written = sum(r.rows for r in results)
    return BackfillFigures(
        from_layer=from_layer,
        tables=len(results),
        rows_read=rows_read,
        rows_written=written,
        rows_by_layer=rows_by_layer(results),
        deleted=sum(r.deleted for r in results),
        seconds=round(seconds, 1),
        views_s=round(views_s, 1),
        serving_s=round(serving_s, 1),
        input_rows_per_s=per_second(rows_read, seconds),
        output_rows_per_s=per_second(written, seconds),
        per_table={r.table: {"rows": r.rows, "partitions": r.partitions,
                             "seconds": r.seconds} for r in results},
    )


# --------------------------------------------------------------------- streaming rate
@dataclass(frozen=True)
class StreamRate:
    """A throughput of the streaming job through every layer.

    Attributes:
        msgs_per_s: Messages per second, publish to committed in every layer.
        source: Where the figure comes from (file, key, when measured).
        measured_here: Whether this benchmark run measured it.

    """

    msgs_per_s: float
    source: str
    measured_here: bool = False


def rate_from_results(path: Path) -> StreamRate | None:
    """The lakehouse benchmark's throughput in a harness results file, if it has one."""
    try:
        data = json.loads(path.read_text())
        lake = data["results"]["lakehouse"]
        rate = float(lake["throughput"]["through_all_layers_msgs_per_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    minutes = lake["throughput"].get("simulated_minutes")
    return StreamRate(rate, f"{path}: lakehouse.throughput.through_all_layers_msgs_per_s, "
                            f"measured {data.get('when', '?')} ({minutes} simulated minutes, "
                            f"{lake.get('meters', '?')} meters)")


_DOCS_RATE = re.compile(r"≈\s*([\d,]+(?:\.\d+)?)\s*messages/s end to end")
_DOCS_WHEN = re.compile(r"\*\*Latest run,\s*([^(*]+?)\s*[(*]")


def rate_from_docs(text: str, where: str = "docs/benchmarks.md") -> StreamRate | None:
    """The latest lakehouse throughput written up in docs/benchmarks.md, if any.

    Reads the "Streaming lakehouse" section: its "≈ N messages/s end to end" figure and
    the date of its "Latest run".
    """
    start = text.find("## Streaming lakehouse")
    if start < 0:
        return None
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else None]
    m = _DOCS_RATE.search(section)
    if m is None:
        return None
    when = _DOCS_WHEN.search(section)
    return StreamRate(float(m.group(1).replace(",", "")),
                      f"{where}, Streaming lakehouse, latest run "
                      f"{when.group(1) if when else '(date not given)'}")


def latest_stream_rate(settings: GridLakeSettings, docs: Path = DOCS) -> StreamRate | None:
    """The latest measured streaming throughput: results.json first, then the docs."""
    found = rate_from_results(settings.home / "bench" / "results.json")
    if found is None and docs.exists():
        found = rate_from_docs(docs.read_text(encoding="utf-8"))
    return found


def replay_figures(messages: int, rate: StreamRate | None,
                   backfill_s: float, load_and_backfill_s: float) -> dict[str, Any]:
    """The streaming replay time of ``messages`` at ``rate`` next to the backfill's time.

    Unless the rate was measured in this run, the time is an extrapolation from another
    run's rate, and labelled so.
    """
    out: dict[str, Any] = {"messages": messages}
    if rate is None or rate.msgs_per_s <= 0:
        out["note"] = "no streaming throughput found (run `gridlake bench --only lakehouse`)"
        return out
    replay_s = messages / rate.msgs_per_s
    out.update({
        "method": ("measured rate of a slice of the same fleet in this run"
                   if rate.measured_here else
                   "extrapolation: messages / the latest measured streaming rate (not a "
                   "replay run)"),
        "rate_msgs_per_s": rate.msgs_per_s,
        "rate_source": rate.source,
        "replay_s": round(replay_s, 1),
        "replay_h": round(replay_s / 3600, 2),
        "replay_over_backfill": round(replay_s / backfill_s, 1) if backfill_s > 0 else None,
        "replay_over_load_and_backfill": (round(replay_s / load_and_backfill_s, 1)
                                          if load_and_backfill_s > 0 else None),
    })
    return out


# ----------------------------------------------------------------------------- the run
def options_from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Benchmark options from ``GRIDLAKE_BENCH_BACKFILL_*`` variables (for the harness).

    ``DAYS``, ``METERS``, ``STREAM_MINUTES`` (integers) and ``KEEP`` (``1``/``true``) map
    to the parameters of :func:`run_benchmark`; unset ones keep their defaults.

    Raises:
        ValueError: A variable that is not an integer (or a boolean for ``KEEP``).

    """
    env = dict(os.environ) if env is None else env
    out: dict[str, Any] = {}
    for name in ("days", "meters", "stream_minutes"):
        value = env.get(ENV_PREFIX + name.upper())
        if value:
            try:
                out[name] = int(value)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{name.upper()}={value!r}: not an integer") \
                    from None
    keep = env.get(ENV_PREFIX + "KEEP")
    if keep:
        if keep.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(f"{ENV_PREFIX}KEEP={keep!r}: use 1/true or 0/false")
        out["keep"] = keep.lower() in ("1", "true", "yes")
    return out


def bench_root(run: str) -> str:
    """HDFS directory of one benchmark run (its lake is ``<root>/lake``)."""
    return f"/gridlake/bench/backfill-{run}"


def isolated(settings: GridLakeSettings, run: str, meters: int) -> GridLakeSettings:
    """The benchmark's settings: its own lake root, Redis prefix, topics and fleet size."""
    return settings.model_copy(update={
        "hdfs": settings.hdfs.model_copy(update={"lake_root": f"{bench_root(run)}/lake"}),
        "redis": settings.redis.model_copy(update={"key_prefix": f"bbf{run}:"}),
        "kafka": settings.kafka.model_copy(update={"topic_prefix": f"bbf{run}."}),
        "simulator": settings.simulator.model_copy(update={"meters": meters}),
    })


class OdsLoader:
    """Stages days of rows as local Parquet files and commits them to Hudi per table.

    Args:
        spark: The session.
        settings: The benchmark's settings.
        staging: A local directory of its own (emptied as tables are committed).
        figures: Updated with every commit.
        commit_rows: Staged rows of a table that trigger its commit.
        operation: Hudi write operation.

    """

    def __init__(self, spark: Any, settings: GridLakeSettings, staging: Path,
                 figures: LoadFigures, commit_rows: int = COMMIT_ROWS,
                 operation: str = LOAD_OPERATION) -> None:
        self.spark = spark
        self.settings = settings
        self.staging = staging
        self.figures = figures
        self.commit_rows = commit_rows
        self.operation = operation
        self._staged: Counter[str] = Counter()
        self._tables = {t.name: t for t in (*ODS_TABLES.values(), QUARANTINE)}

    def add(self, day: DayRows) -> None:
        """Stage one day; commit the tables that reached ``commit_rows``."""
        import pyarrow.parquet as pq

        for name, rows in day.tables.items():
            directory = self.staging / name
            directory.mkdir(parents=True, exist_ok=True)
            pq.write_table(rows, directory / f"{day.day}.parquet")
            self._staged[name] += rows.num_rows
        for name in [n for n, rows in self._staged.items() if rows >= self.commit_rows]:
            self.commit(name)

    def close(self) -> None:
        """Commit whatever is still staged."""
        for name in [n for n, rows in self._staged.items() if rows]:
            self.commit(name)

    def commit(self, name: str) -> None:
        """Write the staged rows of one table in one Hudi commit and remove their files."""
        table = self._tables[name]
        directory = self.staging / name
        rows = self._staged.pop(name)
        t0 = time.monotonic()
        df = with_timestamps(
            self.spark.read.schema(epoch_ms_schema(table)).parquet(directory.as_uri()), table)
        options = {**write_options(self.settings, table),
                   "hoodie.datasource.write.operation": self.operation}
        uri = hudi_table_path(self.settings, table)
        with_retries(lambda: df.write.format("hudi").options(**options).mode("append")
                     .save(uri), name)
        seconds = time.monotonic() - t0
        shutil.rmtree(directory)
        f = self.figures
        f.write_s += seconds
        f.commits += 1
        if table is QUARANTINE:
            f.quarantined += rows
        else:
            f.ods_rows += rows
            f.ods_rows_by_table[name] = f.ods_rows_by_table.get(name, 0) + rows
        log.info("%s: %d rows committed (%s, %.1f s)", name, rows, self.operation, seconds)


def load_ods(
    spark: Any, settings: GridLakeSettings, first_day: date, days: int, meters: int,
    staging: Path, on_day: Callable[[DayRows, LoadFigures], None] | None = None,
    commit_rows: int = COMMIT_ROWS,
) -> LoadFigures:
    """Simulate the fleet over ``days`` days from ``first_day`` and write it to ODS.

    Args:
        spark: The session.
        settings: The benchmark's settings (its lake; the fleet's seed).
        first_day: First simulated day.
        days: Simulated days.
        meters: Fleet size.
        staging: Local directory for the staged Parquet files.
        on_day: Called after each day is staged.
        commit_rows: See :class:`OdsLoader`.

    """
    end_day = first_day + timedelta(days=days)
    seed = settings.simulator.seed
    figures = LoadFigures(first_day.isoformat(), end_day.isoformat(), meters)
    loader = OdsLoader(spark, settings, staging, figures, commit_rows)
    fleet = Fleet(FleetConfig(meters=meters, seed=seed), day_start_ms(first_day),
                  day_start_ms(end_day))
    t0 = time.monotonic()
    by_topic: Counter[str] = Counter()
    for day in ods_days(fleet.records(), settings.kafka.topic_prefix, seed, meters):
        by_topic.update(day.messages)
        figures.messages = sum(by_topic.values())
        figures.messages_by_topic = dict(by_topic)
        loader.add(day)
        log.info("day %s: %d messages staged", day.day, sum(day.messages.values()))
        if on_day is not None:
            on_day(day, figures)
    loader.close()
    elapsed = time.monotonic() - t0
    figures.generate_s = elapsed - figures.write_s
    figures.finish(elapsed)
    return figures


def count_ods_rows(spark: Any, settings: GridLakeSettings, first_day: date,
                   end_day: date) -> int:
    """ODS rows (every message table) with ``dt`` in ``[first_day, end_day)``."""
    where = (f"`dt` >= {sql_string(first_day.isoformat())} AND "
             f"`dt` < {sql_string(end_day.isoformat())}")
    return sum(
        int(spark.read.format("hudi").load(hudi_table_path(settings, t)).where(where).count())
        for t in ODS_TABLES.values()
    )


def lake_bytes(spark: Any, settings: GridLakeSettings) -> dict[str, int]:
    """Bytes per layer under the lake root.

    ``total`` is every file's length; ``space_consumed`` is HDFS's figure, length times
    each file's replication *setting* (Spark's HDFS client asks for its own default, which
    may exceed the DataNodes there are: the disk holds at most one copy per DataNode).
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    out: dict[str, int] = {}
    root = settings.hdfs.uri + settings.hdfs.lake_root
    for layer in ("ods", "dim", "dwd", "dws", "ads"):
        path = jvm.org.apache.hadoop.fs.Path(f"{root}/{layer}")
        fs = path.getFileSystem(conf)
        if fs.exists(path):
            out[layer] = int(fs.getContentSummary(path).getLength())
    path = jvm.org.apache.hadoop.fs.Path(root)
    summary = path.getFileSystem(conf).getContentSummary(path)
    out["total"] = int(summary.getLength())
    out["space_consumed"] = int(summary.getSpaceConsumed())
    return out


def measure_stream_slice(settings: GridLakeSettings, meters: int, minutes: int,
                         run: str) -> dict[str, Any]:
    """The streaming job's throughput on the first ``minutes`` of the same fleet.

    An isolated job (its own topics, lake and Redis prefix, removed afterwards) as in the
    lakehouse benchmark; the backlog is :func:`ops.bench.streaming.measure_throughput`'s,
    which starts at the same instant as this benchmark's range.
    """
    partitions = {m.topic: settings.kafka.partitions for m in MESSAGES}
    stream, env = isolated_run(settings, partitions, run=f"s{run}",
                               checkpoint_interval_ms=settings.flink.checkpoint_interval_ms)
    stream = stream.model_copy(update={
        "simulator": stream.simulator.model_copy(update={"meters": meters})})
    t0 = time.monotonic()
    control.start(stream, JOB, extra_env=env, resume=False)
    try:
        control.wait_running(stream, JOB, timeout=600, checkpoints=1)
        out = {"start_to_running_s": round(time.monotonic() - t0, 1),
               **measure_throughput(stream, minutes)}
    finally:
        control.stop(stream, JOB, savepoint=False)
        _cleanup(stream, stream.hdfs.lake_root, topics=True)
    return out


def _cleanup(settings: GridLakeSettings, directory: str, topics: bool = False) -> None:
    """Remove a run's HDFS ``directory``, its Redis keys and, if asked, its topics."""
    import redis

    try:
        with WebHdfs.from_settings(settings) as fs:
            fs.delete(directory, recursive=True)
    except LakeError as err:
        log.warning("could not remove %s: %s", directory, err)
    client = redis.Redis.from_url(settings.redis.url)
    try:
        for key in client.scan_iter(match=settings.redis.key_prefix + "*", count=1000):
            client.delete(key)
    finally:
        client.close()
    if topics:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
        try:
            admin.delete_topics([settings.kafka.topic_prefix + m.topic for m in MESSAGES])
        except Exception as err:  # noqa: BLE001 - leftover topics are harmless, say so
            log.warning("could not delete the run's topics: %s", err)
        finally:
            admin.close()


def run_benchmark(
    settings: GridLakeSettings,
    days: int = DEFAULT_DAYS,
    meters: int | None = None,
    stream_minutes: int = 0,
    keep: bool = False,
    commit_rows: int = COMMIT_ROWS,
    progress: bool = True,
) -> dict[str, Any]:
    """Load ``days`` simulated days into ODS, backfill them, compare with the stream.

    Args:
        settings: The stack's settings (HDFS, Redis, Spark; Kafka and Flink only with
            ``stream_minutes``).
        days: Simulated days from :data:`BENCH_START`.
        meters: Fleet size (default: ``settings.simulator.meters``).
        stream_minutes: When > 0, also measure the streaming job on the first minutes of
            the same fleet (an isolated ``lakehouse`` job) and compare with that rate.
        keep: Keep the benchmark's lake (its path is in the result).
        commit_rows: Staged rows of an ODS table per Hudi commit.
        progress: Show progress bars (on stderr).

    Returns:
        ``load``, ``backfill`` and ``streaming_replay`` figures (module docstring).

    Raises:
        ValueError: ``days`` below 1, or a Spark master that is not local (the load
            stages its files on the local disk).

    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if not settings.spark.master.startswith("local"):
        raise ValueError(f"spark.master {settings.spark.master!r}: the benchmark stages its "
                         "ODS files on the local disk and needs a local master")
    meters = meters or settings.simulator.meters
    run = uuid.uuid4().hex[:8]
    s = isolated(settings, run, meters)
    first_day = BENCH_START
    end_day = first_day + timedelta(days=days)
    request = BackfillRequest(first_day, end_day, "dim")
    rate = latest_stream_rate(settings)  # before the harness rewrites results.json
    out: dict[str, Any] = {
        "days": days, "meters": meters, "first_day": first_day.isoformat(),
        "end_day": end_day.isoformat(), "spark_master": s.spark.master,
        "driver_memory": s.spark.driver_memory, "lake_root": s.hdfs.lake_root,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    log.info("backfill bench %s: %d days of %d meters from %s in %s", run, days, meters,
             first_day, s.hdfs.lake_root)
    staging = Path(tempfile.mkdtemp(prefix=f"gridlake-bench-backfill-{run}-"))
    spark = spark_session(s, "gridlake-bench-backfill")
    spark.sparkContext.setLogLevel("ERROR")
    bars = Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} {task.fields[unit]}"),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not progress)
    try:
        with bars:
            t0 = time.monotonic()
            create_tables(s, spark=spark)
            out["create_tables_s"] = round(time.monotonic() - t0, 1)

            task = bars.add_task("ODS load", total=days, unit="days", note="")

            def on_day(day: DayRows, f: LoadFigures) -> None:
                bars.update(task, advance=1,
                            note=f"{f.messages:,} messages · {f.commits} commits")

            load = load_ods(spark, s, first_day, days, meters, staging, on_day, commit_rows)
            bars.update(task, note=f"{load.ods_rows:,} rows · {load.commits} commits · "
                                   f"{load.rows_per_s:,.0f} rows/s")
            out["load"] = asdict(load)
            checks = check_tables(s, [*ODS_TABLES.values(), QUARANTINE])
            out["load"]["ods_tables_config"] = (
                "ok" if all(c.state == "ok" for c in checks)
                else "; ".join(c.line() for c in checks if c.state != "ok"))

            t0 = time.monotonic()
            rows_read = count_ods_rows(spark, s, first_day, end_day)
            out["load"]["ods_rows_counted"] = rows_read
            out["load"]["count_s"] = round(time.monotonic() - t0, 1)
            if rows_read != load.ods_rows:
                log.warning("ODS holds %d rows in range, %d were loaded", rows_read,
                            load.ods_rows)

            outputs = planned_outputs(request)
            btask = bars.add_task("backfill", total=len(outputs), unit="tables", note="")
            marks: list[float] = []

            def on_table(res: TableResult, done: int, total: int) -> None:
                marks.append(time.monotonic() - res.seconds)  # when the table started
                bars.update(btask, completed=done, note=f"{res.table}: {res.rows:,} rows")

            t0 = time.monotonic()
            results = run_backfill(s, request, spark, on_table=on_table)
            t1 = time.monotonic()
            last_end = t0 if not results else marks[-1] + results[-1].seconds
            figures = backfill_figures(
                request.from_layer, results, rows_read, t1 - t0,
                views_s=(marks[0] - t0) if marks else t1 - t0, serving_s=t1 - last_end)
            bars.update(btask, note=f"{figures.rows_written:,} rows · "
                                    f"{figures.input_rows_per_s:,.0f} in/s")
            out["backfill"] = asdict(figures)
            out["lake_bytes"] = lake_bytes(spark, s)
    finally:
        spark.stop()
        shutil.rmtree(staging, ignore_errors=True)
        if not keep:
            _cleanup(s, bench_root(run))
    if stream_minutes > 0:
        measured = measure_stream_slice(settings, meters, stream_minutes, run)
        out["stream_slice"] = measured
        rate = StreamRate(float(measured["through_all_layers_msgs_per_s"]),
                          f"this run: {stream_minutes} simulated minutes of the same fleet "
                          "through an isolated lakehouse job", measured_here=True)
    out["streaming_replay"] = replay_figures(
        load.messages, rate, figures.seconds, load.seconds + figures.seconds)
    log.info("backfill bench: %s", json.dumps(out))
    return out
