"""History import: CSV or Parquet files of past messages into ODS, bad rows into quarantine.

``gridlake backfill import FILE... --kind KIND`` loads files of one message kind (a
:class:`~lakehouse.contracts.MessageContract`) into that kind's ODS table, so that a
backfill (:mod:`jobs.batch.backfill`) can then recompute DIM/DWD/DWS/ADS over the imported
days. It is the stream's ODS step for rows that never went through Kafka:

* every file is checked first (exists, readable, format, columns, parseable, not empty),
  all of them before any table is touched (:func:`plan_import`);
* each row is read into the JSON value the stream would have received (:func:`read_value`)
  and checked by the contract's own :meth:`~lakehouse.contracts.MessageContract.validate`,
  so reasons are the stream's (``missing_field:X``, ``bad_type:X``); a valid row goes to
  ``ods_<kind>``, an invalid one to ``ods_quarantine`` with its reason and the raw row as
  JSON, each row to exactly one of them;
* the Kafka position of an imported row is synthetic and deterministic: topic
  ``import:<topic>`` (``:`` never occurs in a Kafka topic name, so no key collides with a
  streamed row), partition and the high half of the offset from the SHA-256 of the file's
  bytes, the low 32 bits of the offset the row's index; re-importing the same file
  upserts the same keys. ``ingest_ts`` is the row's event time (a history row counts as
  received on time: ``lateness`` is ``on_time``), so that it too is the same on every
  import.

See docs/backfill.md, "History import".
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra.lake import hudi_table_path
from infra.settings import GridLakeSettings
from infra.spark import with_retries, write_options
from jobs.batch.backfill import (
    DEVICE_TYPES,
    BackfillRequest,
    Scope,
)
from jobs.common.ddl import quote
from lakehouse.contracts.messages import DEVICE_REGISTRY, MESSAGES
from lakehouse.contracts.schema import Field, FieldType, MessageContract, TableContract
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE

log = logging.getLogger(__name__)

#: Message kinds that can be imported, by contract name.
KINDS: dict[str, MessageContract] = {m.name: m for m in MESSAGES}
#: File formats by file name extension.
FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet"}
#: Prefix of the synthetic topic of imported rows (not a legal Kafka topic character).
IMPORT_TOPIC_PREFIX = "import:"
#: ``lateness`` of imported rows (see the ODS contract).
IMPORTED_LATENESS = "on_time"
#: Low bits of ``kafka_offset`` holding the row index within its file.
ROW_BITS = 32
#: Most data rows one file may hold.
MAX_ROWS = 1 << ROW_BITS
#: Rows buffered before they are written (one Hudi commit per table per batch).
BATCH_ROWS = 500_000
#: Quarantined rows a plan lists by line, per file.
EXAMPLES = 5

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# epoch milliseconds Python and Spark can both represent (years 1 to 9999)
_MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS
_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _MS
_RANGES: dict[FieldType, tuple[int, int]] = {
    FieldType.INT: (-(2**31), 2**31 - 1),
    FieldType.BIGINT: (-(2**63), 2**63 - 1),
    FieldType.TIMESTAMP: (_MIN_MS, _MAX_MS),
}
_INTEGER = re.compile(r"[+-]?\d{1,25}")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CHUNK = 1 << 20


class HistoryError(ValueError):
    """A history import that cannot run (bad kind, file or content); nothing was written."""


def contract_for(kind: str) -> MessageContract:
    """The message contract called ``kind``.

    Raises:
        HistoryError: No contract has that name (the message lists the known ones).

    """
    try:
        return KINDS[kind]
    except KeyError:
        raise HistoryError(
            f"unknown kind {kind!r}; choose from {', '.join(KINDS)}"
        ) from None


def import_topic(contract: MessageContract, topic_prefix: str) -> str:
    """The synthetic ``kafka_topic`` of rows imported for ``contract``."""
    return f"{IMPORT_TOPIC_PREFIX}{topic_prefix}{contract.topic}"


def file_position(sha256: str) -> tuple[int, int]:
    """``(kafka_partition, offset base)`` of a file from the hex SHA-256 of its bytes.

    The partition is the digest's first 31 bits, the offset base its next 31 bits shifted
    above :data:`ROW_BITS`; a row's offset is the base plus its index. Two different files
    share keys only if 62 bits of their digests agree.
    """
    digest = bytes.fromhex(sha256)
    partition = int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
    base = (int.from_bytes(digest[4:8], "big") & 0x7FFF_FFFF) << ROW_BITS
    return partition, base


def day_of(ms: int) -> str:
    """The UTC date (``yyyy-MM-dd``) of an epoch-milliseconds instant."""
    return (_EPOCH + ms * _MS).date().isoformat()


# ------------------------------------------------------------------------------ values
def _integer(t: FieldType, value: int, raw: Any) -> Any:
    low, high = _RANGES[t]
    return value if low <= value <= high else str(raw)


def _iso_ms(text: str, raw: str) -> Any:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return raw
    if dt.tzinfo is None:  # no offset: ambiguous, not guessed
        return raw
    return _integer(FieldType.TIMESTAMP, (dt - _EPOCH) // _MS, raw)


def read_value(f: Field, value: Any) -> Any:
    """The JSON value a file's cell stands for, to be checked by the contract.

    Text (every CSV cell, string columns of Parquet) is read by the field's type: integers
    (``INT``, ``BIGINT``) as decimal digits, ``DOUBLE`` as a decimal number, ``BOOLEAN`` as
    ``true``/``false`` (any case), ``TIMESTAMP`` as epoch milliseconds or an ISO-8601
    date-time with a UTC offset (``2026-03-01T22:00:00Z``, ``...+01:00``; fractions below a
    millisecond are truncated). Typed Parquet values are taken as they are (integers for
    a ``DOUBLE`` become floats, zoned timestamps epoch milliseconds).

    Nothing is rejected here: a value that cannot be read as the field's type (including
    integers outside the column's range and timestamps without an offset) is passed on as
    text, which :meth:`MessageContract.validate` reports as ``bad_type:<field>``.
    """
    if value is None or f.type is FieldType.STRING:
        return value
    if isinstance(value, str):
        text = value.strip()
        if f.type is FieldType.BOOLEAN:
            return {"true": True, "false": False}.get(text.lower(), value)
        if f.type is FieldType.DOUBLE:
            return float(text) if _DECIMAL.fullmatch(text) else value
        if _INTEGER.fullmatch(text):
            return _integer(f.type, int(text), value)
        if f.type is FieldType.TIMESTAMP:
            return _iso_ms(text, value)
        return value
    if isinstance(value, bool):
        return value
    if f.type is FieldType.DOUBLE and isinstance(value, int | Decimal):
        return float(value)
    if isinstance(value, int) and f.type in _RANGES:
        return _integer(f.type, value, value)
    if f.type is FieldType.TIMESTAMP and isinstance(value, datetime):
        if value.tzinfo is None:
            return str(value)
        return _integer(FieldType.TIMESTAMP, (value - _EPOCH) // _MS, value)
    return value


@dataclass(frozen=True)
class ImportRow:
    """One data row of a file, read and checked.

    Attributes:
        index: 0-based index among the file's data rows (the low bits of its offset).
        line: Where it is, for messages: CSV line of its end, or 1-based Parquet row.
        values: Contract field → value read (see :func:`read_value`).
        reason: Why the contract rejects it (quarantine), or None (ODS).
        payload: The raw row as JSON (the cells as they are in the file).
        ingest_ms: Its ``ingest_ts``: its event time, or for a row without a readable
            one, the last readable one before it in the file (else the file's first).

    """

    index: int
    line: int
    values: dict[str, Any]
    reason: str | None
    payload: str
    ingest_ms: int | None


def check_row(contract: MessageContract, raw: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A raw row's values as read and the contract's reason to reject them (None: valid)."""
    values = {f.name: read_value(f, raw.get(f.name)) for f in contract.fields}
    return values, contract.validate(values)


def _event_ms(contract: MessageContract, values: dict[str, Any]) -> int | None:
    v = values.get(contract.event_time_field)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def payload_json(raw: dict[str, Any]) -> str:
    """A raw row as the JSON text kept in quarantine's ``payload`` (values as they are)."""
    return json.dumps(raw, ensure_ascii=False, default=str)


# ------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class SourceFile:
    """A checked input file.

    Attributes:
        path: The file.
        format: ``csv`` or ``parquet``.
        columns: Its columns, in file order.
        sha256: Hex SHA-256 of its bytes (its identity: see :func:`file_position`).

    """

    path: Path
    format: str
    columns: tuple[str, ...]
    sha256: str


def detect_format(path: Path, fmt: str | None = None) -> str:
    """``csv`` or ``parquet``: ``fmt`` when given, else from the file name's extension.

    Raises:
        HistoryError: Unknown format, or an extension that names none.

    """
    if fmt is not None:
        if fmt not in FORMATS.values():
            raise HistoryError(f"unknown format {fmt!r}; choose from csv, parquet")
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise HistoryError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            "name files .csv or .parquet, or pass --format csv|parquet"
        ) from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_columns(path: Path, contract: MessageContract, columns: Sequence[str]) -> None:
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise HistoryError(f"{path}: duplicate column(s) {', '.join(dup)}")
    known = {f.name for f in contract.fields}
    missing = [f.name for f in contract.fields if f.required and f.name not in columns]
    unknown = [repr(c) if not c else c for c in columns if c not in known]
    problems = []
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if problems:
        raise HistoryError(
            f"{path}: {'; '.join(problems)} for {contract.name} "
            f"(its columns: {', '.join(f.name for f in contract.fields)})"
        )


def _csv_reader(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Non-blank records of a CSV file with the line each ends on."""
    line = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            for record in reader:
                line = reader.line_num
                if not record:
                    continue
                if any("\x00" in cell for cell in record):
                    raise HistoryError(f"{path}: line {line}: NUL byte (not a text file)")
                yield line, record
    except UnicodeDecodeError:
        raise HistoryError(f"{path}: not UTF-8 text (after line {line})") from None
    except csv.Error as err:
        raise HistoryError(f"{path}: malformed CSV after line {line}: {err}") from None
    except OSError as err:
        raise HistoryError(f"{path}: cannot read: {err.strerror or err}") from None


def _arrow_problem(f: Field, atype: Any) -> str | None:
    """Why a Parquet column's type cannot hold ``f`` (None when it can)."""
    import pyarrow as pa

    if pa.types.is_dictionary(atype):
        atype = atype.value_type
    text = pa.types.is_string(atype) or pa.types.is_large_string(atype)
    ok = pa.types.is_null(atype) or {
        FieldType.STRING: text,
        FieldType.INT: pa.types.is_integer(atype),
        FieldType.BIGINT: pa.types.is_integer(atype),
        FieldType.DOUBLE: (pa.types.is_floating(atype) or pa.types.is_integer(atype)
                           or pa.types.is_decimal(atype)),
        FieldType.BOOLEAN: pa.types.is_boolean(atype),
        FieldType.TIMESTAMP: (pa.types.is_integer(atype) or text
                              or (pa.types.is_timestamp(atype) and atype.tz is not None)),
    }[f.type]
    if ok:
        return None
    if f.type is FieldType.TIMESTAMP and pa.types.is_timestamp(atype):
        return (f"column {f.name} is {atype} without a time zone (write UTC timestamps with "
                "tz='UTC', or epoch milliseconds)")
    return f"column {f.name} is {atype}, which cannot hold a {f.type.value}"


def open_source(path: Path | str, contract: MessageContract, fmt: str | None = None) -> SourceFile:
    """Check a file's access, format and columns (the rows are read by :func:`read_raw`).

    Raises:
        HistoryError: Missing, unreadable, unknown format, not CSV/Parquet, no header or
            no rows, duplicate, missing required or unknown columns, Parquet column types
            that cannot hold the contract's.

    """
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path}: no such file")
    if not path.is_file():
        raise HistoryError(f"{path}: not a file")
    if not os.access(path, os.R_OK):
        raise HistoryError(f"{path}: not readable (permission denied)")
    kind = detect_format(path, fmt)
    try:
        sha = _sha256(path)
    except OSError as err:
        raise HistoryError(f"{path}: cannot read: {err.strerror or err}") from None
    if kind == "csv":
        header = next(_csv_reader(path), None)
        if header is None:
            raise HistoryError(f"{path}: empty file (no header row)")
        columns = tuple(c.strip() for c in header[1])
        _check_columns(path, contract, columns)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as err:
            raise HistoryError(f"{path}: not a readable Parquet file: {err}") from None
        schema = pf.schema_arrow
        columns = tuple(schema.names)
        _check_columns(path, contract, columns)
        problems = [p for f in contract.fields if f.name in columns
                    if (p := _arrow_problem(f, schema.field(f.name).type))]
        if problems:
            raise HistoryError(f"{path}: {'; '.join(problems)}")
        if pf.metadata.num_rows == 0:
            raise HistoryError(f"{path}: no data rows")
    return SourceFile(path, kind, columns, sha)


def read_raw(source: SourceFile) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each data row as ``(line, {column: cell})``, in file order.

    CSV cells are text; an empty cell is null (CSV cannot tell it from an empty string).

    Raises:
        HistoryError: The file is malformed (unparseable CSV, a record whose number of
            cells differs from the header's, unreadable Parquet data, no data rows).

    """
    n = 0
    if source.format == "csv":
        records = _csv_reader(source.path)
        next(records, None)  # the header
        width = len(source.columns)
        for line, record in records:
            if len(record) != width:
                raise HistoryError(f"{source.path}: line {line}: {len(record)} cells, the "
                                   f"header has {width}")
            n += 1
            yield line, {c: (v if v != "" else None) for c, v in zip(source.columns, record,
                                                                        strict=True)}
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            for batch in pq.ParquetFile(source.path).iter_batches(batch_size=65_536):
                for row in batch.to_pylist():
                    n += 1
                    yield n, row
        except (pa.ArrowException, OSError) as err:
            raise HistoryError(f"{source.path}: unreadable Parquet data after row {n}: "
                               f"{err}") from None
    if n == 0:
        raise HistoryError(f"{source.path}: no data rows")


def walk(source: SourceFile, contract: MessageContract,
         fallback_ms: int | None = None) -> Iterator[ImportRow]:
    """Every data row of ``source``, read and checked against ``contract``.

    Args:
        source: A file checked by :func:`open_source`.
        contract: The kind's contract.
        fallback_ms: ``ingest_ms`` of rows before the first with a readable event time
            (None leaves theirs None: the planning pass does not know it yet).

    Raises:
        HistoryError: The file is malformed or has more than :data:`MAX_ROWS` rows.

    """
    last = fallback_ms
    for index, (line, raw) in enumerate(read_raw(source)):
        if index >= MAX_ROWS:
            raise HistoryError(f"{source.path}: more than {MAX_ROWS} rows; split the file")
        values, reason = check_row(contract, raw)
        event_ms = _event_ms(contract, values)
        if event_ms is not None:
            last = event_ms
        yield ImportRow(index, line, values, reason, payload_json(raw),
                        event_ms if event_ms is not None else last)


# ---------------------------------------------------------------------------- planning
@dataclass
class FilePlan:
    """What importing one file writes.

    Attributes:
        path: The file.
        format: ``csv`` or ``parquet``.
        sha256: Hex SHA-256 of its bytes.
        kafka_partition: The ``kafka_partition`` of its rows.
        rows: Data rows.
        valid: Rows for ODS.
        quarantined: Rows for quarantine.
        reasons: Quarantine reason → rows.
        ods_days: ODS ``dt`` partitions (event days).
        quarantine_days: Quarantine ``dt`` partitions (days of their ``ingest_ts``).
        first_event_ms: The first readable event time in file order (None: none).
        same_as: An earlier file of the import with identical bytes (this one is skipped).
        examples: The first :data:`EXAMPLES` quarantined rows as ``(line, reason)``.

    """

    path: Path
    format: str
    sha256: str
    kafka_partition: int
    rows: int = 0
    valid: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    ods_days: set[str] = field(default_factory=set)
    quarantine_days: set[str] = field(default_factory=set)
    first_event_ms: int | None = None
    same_as: Path | None = None
    examples: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ImportPlan:
    """Every file of one import, checked and counted; nothing written yet.

    Attributes:
        kind: Message kind (contract name).
        topic: The rows' synthetic ``kafka_topic``.
        files: Per file, in the order given.

    """

    kind: str
    topic: str
    files: list[FilePlan]

    @property
    def imported(self) -> list[FilePlan]:
        """Files that are written (not a copy of an earlier one)."""
        return [f for f in self.files if f.same_as is None]

    @property
    def rows(self) -> int:
        """Data rows written in all."""
        return sum(f.rows for f in self.imported)

    @property
    def valid(self) -> int:
        """Rows for ODS."""
        return sum(f.valid for f in self.imported)

    @property
    def quarantined(self) -> int:
        """Rows for quarantine."""
        return sum(f.quarantined for f in self.imported)

    @property
    def reasons(self) -> Counter[str]:
        """Quarantine reason → rows, over all files."""
        return sum((f.reasons for f in self.imported), Counter())

    @property
    def ods_days(self) -> list[str]:
        """ODS partitions written, sorted."""
        return sorted(set().union(*(f.ods_days for f in self.imported)))

    @property
    def quarantine_days(self) -> list[str]:
        """Quarantine partitions written, sorted."""
        return sorted(set().union(*(f.quarantine_days for f in self.imported)))


def plan_file(source: SourceFile, contract: MessageContract) -> FilePlan:
    """Read and check every row of one file; count where each would go.

    Raises:
        HistoryError: The file is malformed.

    """
    partition, _ = file_position(source.sha256)
    plan = FilePlan(source.path, source.format, source.sha256, partition)
    leading = 0  # quarantined rows before the first readable event time
    for row in walk(source, contract):
        plan.rows += 1
        if row.ingest_ms is not None and plan.first_event_ms is None:
            plan.first_event_ms = row.ingest_ms
        if row.reason is None:
            plan.valid += 1
            plan.ods_days.add(day_of(row.values[contract.event_time_field]))
            continue
        plan.quarantined += 1
        plan.reasons[row.reason] += 1
        if len(plan.examples) < EXAMPLES:
            plan.examples.append((row.line, row.reason))
        if row.ingest_ms is None:
            leading += 1
        else:
            plan.quarantine_days.add(day_of(row.ingest_ms))
    if leading:
        plan.quarantine_days.add(day_of(plan.first_event_ms or 0))
    return plan


def plan_import(
    paths: Sequence[Path | str], kind: str, fmt: str | None = None, topic_prefix: str = "",
) -> ImportPlan:
    """Check every file of an import and count its rows; writes nothing.

    Every check of every file runs before anything is written: a bad kind, format or file
    fails the whole import.

    Args:
        paths: The files (all of kind ``kind``).
        kind: Message contract name, e.g. ``meter_reading``.
        fmt: ``csv`` or ``parquet`` for every file (default: from each file's extension).
        topic_prefix: The lake's Kafka topic prefix (``settings.kafka.topic_prefix``).

    Raises:
        HistoryError: Unknown kind or format, no files, or a file that cannot be imported.

    """
    contract = contract_for(kind)
    if not paths:
        raise HistoryError("no files to import")
    plans: list[FilePlan] = []
    seen: dict[str, Path] = {}
    for p in paths:
        source = open_source(p, contract, fmt)
        if source.sha256 in seen:
            first = next(f for f in plans if f.path == seen[source.sha256])
            copy = FilePlan(source.path, source.format, source.sha256, first.kafka_partition,
                            same_as=first.path)
            log.warning("%s has the same bytes as %s: imported once", source.path, first.path)
            plans.append(copy)
            continue
        seen[source.sha256] = source.path
        plan = plan_file(source, contract)
        log.info("%s: %d rows, %d valid, %d to quarantine", source.path, plan.rows,
                 plan.valid, plan.quarantined)
        plans.append(plan)
    return ImportPlan(kind, import_topic(contract, topic_prefix), plans)


# ------------------------------------------------------------------------------ tables
def _check_unchanged(file: FilePlan, sha256: str | None = None) -> None:
    try:
        sha = sha256 or _sha256(file.path)
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


def stored_row(
    contract: MessageContract, topic: str, partition: int, offset: int,
    values: dict[str, Any], reason: str | None, payload: str, ingest_ms: int,
) -> tuple[TableContract, dict[str, Any]]:
    """One imported message as ``(table, row)``: its ODS row, or its quarantine row.

    Args:
        contract: The message's contract.
        topic: Its synthetic ``kafka_topic`` (:func:`import_topic`).
        partition: Its ``kafka_partition``.
        offset: Its ``kafka_offset``.
        values: Its values as read (:func:`check_row`).
        reason: Why the contract rejects it (None: valid, the row goes to ODS).
        payload: The raw message as JSON (:func:`payload_json`; quarantine rows only).
        ingest_ms: Its ``ingest_ts`` in epoch milliseconds.

    """
    position = {"kafka_topic": topic, "kafka_partition": partition, "kafka_offset": offset}
    if reason is None:
        event = values[contract.event_time_field]
        return ODS_TABLES[contract.name], {
            **values, **position, "ingest_ts": ingest_ms, "lateness": IMPORTED_LATENESS,
            "dt": day_of(event),
        }
    return QUARANTINE, {**position, "reason": reason, "payload": payload,
                        "ingest_ts": ingest_ms, "dt": day_of(ingest_ms)}


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
    from pyspark.sql import types as T

    from infra.spark import spark_type

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
        plan: From :func:`plan_import`.
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
    own = spark is None
    if own:
        from infra.spark import spark_session

        spark = spark_session(settings, "gridlake-import")
        spark.sparkContext.setLogLevel("ERROR")
    ods_table = ODS_TABLES[plan.kind]
    buffers: dict[str, list[dict[str, Any]]] = {ods_table.name: [], QUARANTINE.name: []}

    def flush() -> None:
        for table in (ods_table, QUARANTINE):
            rows = buffers[table.name]
            if not rows:
                continue
            _write(spark, settings, table, rows)
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

    try:
        for file in plan.imported:
            for table, row in table_rows(plan, file):
                buffers[table.name].append(row)
                if sum(len(b) for b in buffers.values()) >= batch_rows:
                    flush()
            result.files += 1
            if on_progress is not None:
                on_progress(result)
        flush()
    finally:
        if own:
            spark.stop()
    result.seconds = round(time.monotonic() - t0, 1)
    log.info("import of %d %s files: %d rows to %s, %d to %s (%.1f s)", result.files,
             plan.kind, result.ods_rows, ods_table.name, result.quarantined, QUARANTINE.name,
             result.seconds)
    return result


def _job_lake_root(pid: int) -> str | None:
    """The lake root a job process was started with, when its environment names one."""
    import psutil

    try:
        return psutil.Process(pid).environ().get("GRIDLAKE_HDFS__LAKE_ROOT")
    except psutil.Error:
        return None


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
    from jobs.streaming import control

    st = control.status(settings, "lakehouse")
    # a job of this home started for another lake (isolated test and benchmark runs) is not
    # this lake's writer
    ours = st.pid is not None and _job_lake_root(st.pid) in (None, settings.hdfs.lake_root)
    if ours or st.flink_state == "RUNNING":
        raise HistoryError(
            "the streaming job is running and the lake has a single writer "
            "(lake.concurrency=single_writer): stop it first (`gridlake stream stop`)"
        )


def followup_request(plan: ImportPlan, today: date | None = None) -> BackfillRequest | None:
    """The backfill that recomputes what the imported ODS rows feed, or None.

    Days: the first imported event day up to the day after the last (its first readings
    compare with the imported last ones), ending at the latest today. A telemetry kind
    recomputes from DWD down, for its device type; the device registry from DIM down; any
    other kind from DWD down.
    """
    days = plan.ods_days
    if not days:
        return None
    today = today or datetime.now(UTC).date()
    start = date.fromisoformat(days[0])
    end = min(date.fromisoformat(days[-1]) + timedelta(days=2), today + timedelta(days=1))
    if start > today or end <= start:
        return None
    types = tuple(t for t, kinds in DEVICE_TYPES.items() if plan.kind in kinds)
    layer = "dim" if plan.kind == DEVICE_REGISTRY.name else "dwd"
    return BackfillRequest(start, end, layer, Scope(device_types=types))
