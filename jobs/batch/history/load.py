"""Writing a planned history import into the lake with Spark.

:func:`run_import` writes the rows of a plan (:mod:`.plan`) in batches, each batch one Hudi
upsert per table (``ods_<kind>`` and ``ods_quarantine``) with the write options every
backfill uses; :func:`table_rows` reads a planned file again into those rows.
:func:`check_stream_stopped` refuses to write beside the lake's streaming job when the
lake has a single writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from infra.lake import hudi_table_path
from infra.settings import GridLakeSettings
from infra.spark import spark_scope, spark_type, with_retries, write_options
from jobs.batch.history.files import HistoryError, contract_for, open_source, sha256_of, walk
from jobs.batch.history.plan import FilePlan, ImportPlan
from jobs.batch.history.rows import file_position, stored_row
from jobs.common.ddl import quote
from jobs.streaming import control
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE

log = logging.getLogger(__name__)

#: Rows buffered before they are written (one Hudi commit per table per batch).
BATCH_ROWS = 500_000


def _check_unchanged(file: FilePlan, sha256: str | None = None) -> None:
    try:
        sha = sha256 or sha256_of(file.path)
    except OSError as err:
        raise HistoryError(f"{file.path}: cannot read: {err.strerror or err}") from None
    if sha != file.sha256:
        raise HistoryError(f"{file.path}: changed since it was checked; run the import again")


def table_rows(
    plan: ImportPlan, file: FilePlan,
) -> Iterator[tuple[TableContract, dict[str, Any]]]:
    """Each row of a planned file as ``(table, row)``: its ODS or its quarantine row.

    Timestamps are epoch milliseconds. Raises :class:`HistoryError` when the file's bytes
    changed since it was planned.
    """
    contract = contract_for(plan.kind)
    source = open_source(file.path, contract, file.format)
    _check_unchanged(file, source.sha256)
    partition, base = file_position(file.sha256)
    fallback = file.first_event_ms if file.first_event_ms is not None else 0
    for row in walk(source, contract, fallback):
        ingest = row.ingest_ms if row.ingest_ms is not None else fallback
        yield stored_row(contract, plan.topic, partition, base + row.index, row.values,
                         row.reason, row.payload, ingest)


@dataclass
class ImportResult:
    """What an import wrote (so far, while it runs).

    Attributes:
        kind: Message kind.
        files: Files read completely.
        rows: Rows written.
        ods_rows: Rows written to ODS.
        quarantined: Rows written to quarantine.
        commits: Hudi writes (one per table per batch).
        seconds: Time taken.

    """

    kind: str
    files: int = 0
    rows: int = 0
    ods_rows: int = 0
    quarantined: int = 0
    commits: int = 0
    seconds: float = 0.0


ImportProgress = Callable[[ImportResult], None]
"""Called after each batch written and each file read."""


def epoch_ms_schema(table: TableContract) -> Any:
    """The Spark ``StructType`` of ``table`` with timestamps as epoch milliseconds (BIGINT)."""
    from pyspark.sql import types as T  # lazy: pyspark

    return T.StructType([
        T.StructField(f.name, T.LongType() if f.type is FieldType.TIMESTAMP
                      else spark_type(f.type), True)
        for f in table.fields
    ])


def with_timestamps(df: Any, table: TableContract) -> Any:
    """``table``'s columns of ``df`` (of :func:`epoch_ms_schema`), timestamps as instants."""
    return df.selectExpr(*[
        f"timestamp_millis({quote(f.name)}) AS {quote(f.name)}"
        if f.type is FieldType.TIMESTAMP else quote(f.name)
        for f in table.fields
    ])


def _frame(spark: Any, table: TableContract, rows: list[dict[str, Any]]) -> Any:
    """A DataFrame of ``table``'s columns from rows with epoch-millisecond timestamps."""
    names = table.field_names
    df = spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows],
                               epoch_ms_schema(table))
    return with_timestamps(df, table)


def _write(spark: Any, settings: GridLakeSettings, table: TableContract,
           rows: list[dict[str, Any]]) -> None:
    df = _frame(spark, table, rows)
    options = write_options(settings, table)
    uri = hudi_table_path(settings, table)
    with_retries(lambda: df.write.format("hudi").options(**options).mode("append").save(uri),
                 table.name)


def run_import(
    settings: GridLakeSettings,
    plan: ImportPlan,
    spark: Any = None,
    on_progress: ImportProgress | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportResult:
    """Write a planned import: ODS rows upserted into ``ods_<kind>``, the rest to quarantine.

    Rows are written in batches of ``batch_rows`` (one Hudi upsert per table per batch),
    with the write options every backfill uses. Re-running an import, or resuming one that
    failed, rewrites the same keys.

    Args:
        settings: Settings (lake, Spark).
        plan: From :func:`.plan.plan_import`.
        spark: A session to use (default: one is started and stopped).
        on_progress: Called after each batch and each file.
        batch_rows: Rows per batch.

    Raises:
        HistoryError: A file changed since it was planned (checked for every file before
            the first write).

    """
    t0 = time.monotonic()
    result = ImportResult(plan.kind)
    for file in plan.imported:  # all of them before the first write
        _check_unchanged(file)
    ods_table = ODS_TABLES[plan.kind]
    buffers: dict[str, list[dict[str, Any]]] = {ods_table.name: [], QUARANTINE.name: []}

    def flush() -> None:
        for table in (ods_table, QUARANTINE):
            rows = buffers[table.name]
            if not rows:
                continue
            _write(session, settings, table, rows)
            result.commits += 1
            result.rows += len(rows)
            if table is QUARANTINE:
                result.quarantined += len(rows)
            else:
                result.ods_rows += len(rows)
            log.info("%s: %d rows written", table.name, len(rows))
            buffers[table.name] = []
        if on_progress is not None:
            on_progress(result)

    with spark_scope(settings, "gridlake-import", spark) as session:
        for file in plan.imported:
            for table, row in table_rows(plan, file):
                buffers[table.name].append(row)
                if sum(len(b) for b in buffers.values()) >= batch_rows:
                    flush()
            result.files += 1
            if on_progress is not None:
                on_progress(result)
        flush()
    result.seconds = round(time.monotonic() - t0, 1)
    log.info("import of %d %s files: %d rows to %s, %d to %s (%.1f s)", result.files,
             plan.kind, result.ods_rows, ods_table.name, result.quarantined, QUARANTINE.name,
             result.seconds)
    return result


def check_stream_stopped(settings: GridLakeSettings) -> None:
    """Refuse to write beside a running streaming job when the lake has a single writer.

    With ``lake.concurrency=single_writer`` a second writer of ODS and quarantine may roll
    back the stream's in-flight commits; with ``optimistic`` both writers take the table
    lock (docs/backfill.md) and nothing is checked here.

    Raises:
        HistoryError: The lake's streaming job is running.

    """
    if settings.lake.concurrency == "optimistic":
        return
    if control.writes_lake(settings, "lakehouse"):
        raise HistoryError(
            "the streaming job is running and the lake has a single writer "
            "(lake.concurrency=single_writer): stop it first (`gridlake stream stop`)"
        )
