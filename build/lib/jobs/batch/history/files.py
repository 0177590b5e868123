"""History files: reading CSV and Parquet files of past messages and checking them.

A file is checked before any row is used (:func:`open_source`: access, format, columns,
Parquet column types), then read row by row (:func:`walk`): each cell is read into the
JSON value the stream would have received (:func:`read_value`) and the row is checked by
its contract (:func:`check_row`), so that reasons are the stream's. A file that cannot be
read raises :class:`HistoryError`; a row that the contract rejects does not (it goes to
quarantine).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jobs.batch.history.rows import MAX_ROWS, payload_json
from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.schema import Field, FieldType, MessageContract
from lakehouse.time import MAX_MS, MIN_MS, to_ms

#: Message kinds that can be imported, by contract name.
KINDS: dict[str, MessageContract] = {m.name: m for m in MESSAGES}
#: File formats by file name extension.
FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet"}

# timestamps: the epoch milliseconds Python and Spark can both represent (years 1 to 9999)
_RANGES: dict[FieldType, tuple[int, int]] = {
    FieldType.INT: (-(2**31), 2**31 - 1),
    FieldType.BIGINT: (-(2**63), 2**63 - 1),
    FieldType.TIMESTAMP: (MIN_MS, MAX_MS),
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


# ------------------------------------------------------------------------------ values
def _integer(t: FieldType, value: int, raw: Any) -> Any:
    low, high = _RANGES[t]
    return value if low <= value <= high else str(raw)


def _instant_ms(t: datetime, raw: Any) -> Any:
    """Epoch milliseconds of an aware ``t``; ``raw`` as text when outside years 1-9999 in UTC."""
    try:
        ms = to_ms(t)
    except ValueError:  # e.g. 0001-01-01T00:00+01:00: before year 1 once taken to UTC
        return str(raw)
    return _integer(FieldType.TIMESTAMP, ms, raw)


def _iso_ms(text: str, raw: str) -> Any:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return raw
    if t.tzinfo is None:  # no offset: ambiguous, not guessed
        return raw
    return _instant_ms(t, raw)


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
        return _instant_ms(value, value)
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


# ------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class SourceFile:
    """A checked input file.

    Attributes:
        path: The file.
        format: ``csv`` or ``parquet``.
        columns: Its columns, in file order.
        sha256: Hex SHA-256 of its bytes (its identity: see
            :func:`~.rows.file_position`).

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


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (its identity: see :func:`~.rows.file_position`)."""
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
        sha = sha256_of(path)
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
