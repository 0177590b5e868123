"""Reading ADS rows straight from the Hudi tables (WebHDFS + Parquet), no JVM.

The API answers from the lake when a range is older than the serving copy, and for
everything while Redis is down. A copy-on-write table's snapshot is, per partition and
file group, the newest base file written by a completed commit
(:func:`infra.lake.snapshot_files`, with the table's :class:`infra.lake.Timeline`):

* base files are named ``<file id>_<write token>_<instant>.parquet``;
* an instant counts when its completed instant file is on the active timeline, or when
  it is older than every instant there (archived, hence completed: Hudi rolls back failed
  writes before archiving);
* files of requested/inflight instants (a write in progress or failed) are ignored.

Tables read this way are partitioned by ``dt`` (the UTC date of the row's time), so a range
reads only its days. What this reader cannot do without Spark — log files of a
merge-on-read table newer than their base file, replaced file groups (clustering) — makes
it raise :class:`LakeReadError` rather than answer wrongly. Decoded Parquet files are kept
in a small LRU (a base file never changes once written).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from api.datasets import Dataset
from infra.lake import (
    LakeError,
    LakeNotFound,
    NeedsSpark,
    Timeline,
    WebHdfs,
    lake_path,
    read_timeline,
    snapshot_files,
)
from infra.settings import GridLakeSettings
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.time import dt_range, from_ms

log = logging.getLogger(__name__)


class LakeReadError(Exception):
    """The lake cannot answer this read now (unreachable, or needs Spark)."""


class LakeReader:
    """Snapshot reads of ADS tables (thread-safe; call from a worker thread)."""

    def __init__(self, settings: GridLakeSettings) -> None:
        self.settings = settings
        self.fs = WebHdfs.from_settings(settings, timeout=settings.api.lake_timeout_s)
        self._files: OrderedDict[str, pa.Table] = OrderedDict()
        self._max_files = settings.api.lake_file_cache
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the WebHDFS connections."""
        self.fs.close()

    def base_path(self, ds: Dataset) -> str:
        """HDFS path of the dataset's table."""
        return lake_path(self.settings, ds.table.layer, ds.table.name)

    def timeline(self, base: str) -> Timeline:
        """The table's timeline (table version 9 layout, or the pre-1.0 one).

        Raises:
            LakeNotFound: There is no table at ``base``.

        """
        tl = read_timeline(self.fs, base)
        if "replacecommit" in tl.actions:
            raise LakeReadError("the table has replaced file groups (clustering or insert "
                                "overwrite): it needs Spark to be read")
        return tl

    def _file(self, path: str, columns: list[str]) -> pa.Table:
        with self._lock:
            hit = self._files.get(path)
            if hit is not None:
                self._files.move_to_end(path)
                return hit
        data = pq.read_table(pa.BufferReader(self.fs.read(path)), columns=columns)
        if self._max_files:
            with self._lock:
                self._files[path] = data
                while len(self._files) > self._max_files:
                    self._files.popitem(last=False)
        return data

    def read(self, ds: Dataset, start_ms: int, end_ms: int,
             equals: Mapping[str, set[str]] | None = None) -> list[dict[str, Any]]:
        """Rows of ``ds`` with time in ``[start_ms, end_ms)`` from the lake.

        Args:
            ds: The dataset.
            start_ms: Inclusive start, epoch ms.
            end_ms: Exclusive end.
            equals: Column → accepted string values (entity filters), applied while
                reading.

        Returns:
            Rows decoded like the serving copy's (:func:`api.models.decode_row`): timestamps
            as UTC datetimes, missing values None. A table that does not exist yet gives
            no rows.

        Raises:
            LakeReadError: WebHDFS unreachable or the table not readable without Spark.

        """
        base = self.base_path(ds)
        columns = ds.fields
        try:
            tl = self.timeline(base)
        except LakeNotFound:
            return []
        except LakeError as err:
            raise LakeReadError(f"lake unavailable: {err}") from err
        t0, t1 = from_ms(start_ms), from_ms(end_ms)
        out: list[dict[str, Any]] = []
        for day in dt_range(start_ms, end_ms):
            try:
                entries = self.fs.list_status(f"{base}/{day}")
                names = snapshot_files(entries, tl)
                tables = [self._file(f"{base}/{day}/{n}", columns) for n in names]
            except LakeNotFound:
                continue
            except NeedsSpark as err:
                raise LakeReadError(str(err)) from err
            except LakeError as err:
                raise LakeReadError(f"lake unavailable: {err}") from err
            for t in tables:
                out.extend(_filtered(t, ds, t0, t1, equals))
        return out

    def version(self, table: TableContract) -> str | None:
        """The newest completed instant of ``table`` ("" when none); None: no table.

        Raises:
            LakeReadError: WebHDFS unreachable or the table not readable without Spark.

        """
        try:
            tl = self.timeline(lake_path(self.settings, table.layer, table.name))
        except LakeNotFound:
            return None
        except LakeError as err:
            raise LakeReadError(f"lake unavailable: {err}") from err
        return max(tl.completed, default="")

    def read_all(self, table: TableContract) -> tuple[str | None, list[dict[str, Any]]]:
        """Every row of a small table's snapshot, every partition (no time range).

        For index tables the API keeps whole in memory (the image index): rows decoded
        as :meth:`read` decodes them.

        Returns:
            The table's :meth:`version` the rows are of, and the rows (none without a
            table).

        Raises:
            LakeReadError: WebHDFS unreachable or the table not readable without Spark.

        """
        base = lake_path(self.settings, table.layer, table.name)
        columns = table.field_names
        types = {f.name: f.type for f in table.fields}
        try:
            tl = self.timeline(base)
        except LakeNotFound:
            return None, []
        except LakeError as err:
            raise LakeReadError(f"lake unavailable: {err}") from err
        out: list[dict[str, Any]] = []
        try:
            folders = ([f"{base}/{e.name}" for e in self.fs.list_status(base)
                        if e.is_dir and not e.name.startswith(".")]
                       if table.partition_fields else [base])
            for folder in folders:
                try:
                    names = snapshot_files(self.fs.list_status(folder), tl)
                except LakeNotFound:  # a partition removed meanwhile (cleaned)
                    continue
                for n in names:
                    out.extend(_decoded(self._file(f"{folder}/{n}", columns).to_pylist(),
                                        types))
        except NeedsSpark as err:
            raise LakeReadError(str(err)) from err
        except LakeError as err:
            raise LakeReadError(f"lake unavailable: {err}") from err
        return max(tl.completed, default=""), out


def _decoded(rows: list[dict[str, Any]], types: Mapping[str, FieldType]
             ) -> list[dict[str, Any]]:
    """Timestamps as UTC datetimes, NaN as None (in place)."""
    for row in rows:
        for name, value in row.items():
            if types.get(name) is FieldType.TIMESTAMP and isinstance(value, datetime):
                row[name] = value.replace(tzinfo=UTC) if value.tzinfo is None else (
                    value.astimezone(UTC))
            elif isinstance(value, float) and value != value:  # NaN: no value
                row[name] = None
    return rows


def _filtered(t: pa.Table, ds: Dataset, t0: datetime, t1: datetime,
              equals: Mapping[str, set[str]] | None) -> list[dict[str, Any]]:
    col = t.column(ds.time_field)
    unit = getattr(col.type, "unit", "ms")
    tz = getattr(col.type, "tz", None)
    lo = pa.scalar(t0 if tz else t0.replace(tzinfo=None), type=pa.timestamp(unit, tz))
    hi = pa.scalar(t1 if tz else t1.replace(tzinfo=None), type=pa.timestamp(unit, tz))
    mask = pc.and_(pc.greater_equal(col, lo), pc.less(col, hi))
    for name, values in (equals or {}).items():
        mask = pc.and_(mask, pc.is_in(t.column(name), value_set=pa.array(sorted(values))))
    return _decoded(t.filter(mask).to_pylist(), {f.name: f.type for f in ds.table.fields})
