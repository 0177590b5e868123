"""Refresh of the ADS serving copy (Redis) for the range a backfill rewrote.

The streaming job writes every row of a served ADS table (``SERVING_SCORE``) twice: to
Hudi and, through the ``gridlake-redis`` connector, to Redis. After a backfill rewrote the
Hudi rows of a range, :func:`refresh_serving` makes the serving copy of that range equal
to the lake again, with the serving copy's write protocol (:mod:`infra.serving_store`,
the one the connector runs):

* every row of the range and scope is read back from the Hudi table (after the
  backfill's writes) and upserted;
* index members of the range that the lake no longer has (the backfill's stale deletes,
  or anything else the lake lost) are deleted. Only for a whole or device-type scope: a
  region or feeder scope deletes nothing in the lake either;
* every batch of rows or keys is one transaction ending with the table's change event, so
  that the API drops its cached answers (``api/events.py``).

The refresh depends on state only (lake and copy), not on what the backfill computed:
running it again (a resumed job) converges to the same copy.

Ordering, as in the lake (the table's ``ordering_field``, ``updated_ts``): the protocol
refuses a row older than the stored hash, and the refresh deletes only hashes computed
before the backfill's snapshot (``as_of_ms``), so a row the stream wrote meanwhile is
never replaced by an older one nor deleted.

Window: the API answers a dataset from the copy from its first index score onward and
reads older times from the lake (docs/api.md), so the copy must hold every row from its
first score on. The refresh never loads rows older than that first score (they would
leave a gap between them and the rest of the copy) and leaves a table whose copy is empty
alone: the lake serves it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import groupby, islice
from typing import Any, TypeVar

from redis.exceptions import RedisError

from infra.lake import hudi_table_path
from infra.serving_store import RETRIES, ServingWriter, connect
from infra.settings import GridLakeSettings
from jobs.common.ddl import quote, sql_string
from lakehouse.contracts.schema import FieldType, TableContract
from lakehouse.contracts.serving import row_member
from lakehouse.time import DAY_MS, day_start_ms, format_time_ms

log = logging.getLogger(__name__)

#: Rows (or deleted keys) per batch (one transaction, one change event).
BATCH_ROWS = 2000

T = TypeVar("T")


class ServingRefreshError(RuntimeError):
    """The serving copy could not be refreshed; the lake's tables are written."""


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ServingTarget:
    """The serving copy of one table, to be refreshed for a range of days.

    Attributes:
        table: The ADS table.
        score_field: Its time column (scores the index).
        start: First day (UTC) of the range.
        end: Day after the last.
        where: SQL condition on the table's columns: the rows of the backfill's scope.
        deletes: Whether keys of the range that the lake no longer has are removed.

    """

    table: TableContract
    score_field: str
    start: date
    end: date
    where: str = "TRUE"
    deletes: bool = True

    @property
    def start_ms(self) -> int:
        """Start of the range in epoch milliseconds."""
        return day_start_ms(self.start)

    @property
    def end_ms(self) -> int:
        """End of the range (exclusive) in epoch milliseconds."""
        return day_start_ms(self.end)

    def describe(self) -> str:
        """What the refresh does, for a dry run."""
        last = self.end - timedelta(days=1)
        days = self.start.isoformat() if last == self.start else f"{self.start} … {last}"
        action = ("upsert the lake's rows, remove keys the lake no longer has"
                  if self.deletes else "upsert the lake's rows of the scope (no removals)")
        return (f"{self.table.name}: `{self.score_field}` in {days} (UTC), from the copy's "
                f"first row on: {action}")


def refresh_window(target: ServingTarget, first_ms: float | None) -> tuple[int, int] | None:
    """``[from, to)`` (epoch ms) of the target's range that the copy holds, or None.

    Args:
        target: The table and range.
        first_ms: The copy's smallest index score (None: the copy is empty).

    """
    if first_ms is None:
        return None
    lo = max(target.start_ms, math.ceil(first_ms))
    return (lo, target.end_ms) if lo < target.end_ms else None


def day_windows(start: date, end: date, window: tuple[int, int]) -> list[tuple[str, int, int]]:
    """The ``dt`` partitions of ``[start, end)`` that meet ``window``, with their part of it.

    Returns:
        ``(dt, from ms, to ms)`` per day, in order.

    """
    out = []
    day = start
    while day < end:
        lo, hi = max(day_start_ms(day), window[0]), min(day_start_ms(day) + DAY_MS, window[1])
        if lo < hi:
            out.append((day.isoformat(), lo, hi))
        day += timedelta(days=1)
    return out


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Consecutive lists of ``n`` items (the last may be shorter)."""
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


# ------------------------------------------------------------------------------ results
@dataclass
class ServingResult:
    """What the refresh did to one table's serving copy.

    Attributes:
        table: Table name.
        from_ms: Start of the window refreshed (None: nothing to refresh).
        to_ms: End of it (exclusive).
        rows: Rows upserted.
        kept: Rows not written: the copy held a newer version.
        deleted: Keys removed.
        skipped: Why nothing was refreshed.
        seconds: Time taken.

    """

    table: str
    from_ms: int | None = None
    to_ms: int | None = None
    rows: int = 0
    kept: int = 0
    deleted: int = 0
    skipped: str | None = None
    seconds: float = 0.0


# --------------------------------------------------------------------------------- lake
def lake_rows(spark: Any, settings: GridLakeSettings, target: ServingTarget,
              window: tuple[int, int]) -> Iterator[dict[str, Any]]:
    """The lake's rows of the target's range, scope and window, in ``dt`` order.

    Timestamps come as epoch milliseconds; rows are streamed partition by partition.
    """
    t = target.table
    if "dt" not in t.field_names:
        raise ValueError(f"{t.name} has no dt partition: no range to refresh")
    cols = [f"unix_millis({quote(f.name)}) AS {quote(f.name)}" if f.type is FieldType.TIMESTAMP
            else quote(f.name) for f in t.fields]
    score = quote(target.score_field)
    df = (spark.read.format("hudi").load(hudi_table_path(settings, t))
          .where(f"`dt` >= {sql_string(target.start.isoformat())}"
                 f" AND `dt` < {sql_string(target.end.isoformat())} AND ({target.where})")
          .selectExpr(*cols)
          .where(f"{score} >= {window[0]} AND {score} < {window[1]}")
          .orderBy("dt"))
    for row in df.toLocalIterator():
        yield row.asDict()


# ------------------------------------------------------------------------------ refresh
def _refresh_table(spark: Any, settings: GridLakeSettings, writer: ServingWriter,
                   target: ServingTarget, as_of_ms: int, batch_rows: int) -> ServingResult:
    t0 = time.monotonic()
    table = target.table
    res = ServingResult(table.name)
    first = writer.first_score(table)
    window = refresh_window(target, first)
    if window is None:
        res.skipped = ("serving copy empty (the lake serves the table)" if first is None else
                       f"range ends before the copy's first row "
                       f"({format_time_ms(math.floor(first))})")
        log.info("%s: serving copy not refreshed: %s", table.name, res.skipped)
        return res
    res.from_ms, res.to_ms = window
    groups = groupby(lake_rows(spark, settings, target, window), key=lambda r: str(r["dt"]))
    pending = next(groups, None)
    for dt, lo, hi in day_windows(target.start, target.end, window):
        while pending is not None and pending[0] < dt:  # not in a window (cannot happen)
            log.warning("%s: rows of dt=%s outside the refresh window", table.name, pending[0])
            pending = next(groups, None)
        in_lake: set[str] = set()
        if pending is not None and pending[0] == dt:
            for batch in batched(pending[1], batch_rows):
                written = writer.upsert(table, target.score_field, batch)
                res.rows += written
                res.kept += len(batch) - written
                in_lake.update(row_member(table, r) for r in batch)
            pending = next(groups, None)
        if target.deletes:
            stale = [m for m in writer.members(table, lo, hi) if m not in in_lake]
            for keys in batched(stale, batch_rows):
                res.deleted += writer.delete(table, keys, as_of_ms)
    res.seconds = round(time.monotonic() - t0, 1)
    log.info("%s: serving copy %s … %s: %d rows upserted, %d kept (newer), %d keys removed "
             "(%.1f s)", table.name, format_time_ms(window[0]), format_time_ms(window[1]),
             res.rows, res.kept, res.deleted, res.seconds)
    return res


def refresh_serving(
    spark: Any,
    settings: GridLakeSettings,
    targets: Sequence[ServingTarget],
    as_of_ms: int,
    on_result: Callable[[ServingResult], None] | None = None,
    client: Any = None,
    batch_rows: int = BATCH_ROWS,
    retries: int = RETRIES,
) -> list[ServingResult]:
    """Make the serving copy of each target's range equal to the lake (see the module doc).

    Args:
        spark: Session reading the Hudi tables.
        settings: Lake and Redis settings (``redis.url``, ``redis.key_prefix``).
        targets: Tables and ranges (:func:`jobs.batch.backfill.planned_serving`).
        as_of_ms: The backfill's snapshot time: only hashes computed before it are removed.
        on_result: Called after each table.
        client: A ``redis.Redis`` (``decode_responses=True``) to use (default: one is
            opened on ``settings.redis.url`` and closed).
        batch_rows: Rows (or deleted keys) per batch: one transaction, one round trip.
        retries: Retries of a command whose connection failed (with backoff).

    Raises:
        ServingRefreshError: Redis unreachable or failing; names the table and what was
            refreshed before.

    """
    own = client is None
    if own:
        client = connect(settings.redis.url, retries)
    results: list[ServingResult] = []
    try:
        writer = ServingWriter(client, settings.redis.key_prefix)
        for target in targets:
            try:
                res = _refresh_table(spark, settings, writer, target, as_of_ms, batch_rows)
            except RedisError as err:
                done = ", ".join(r.table for r in results) or "none"
                raise ServingRefreshError(
                    f"serving copy refresh failed at {target.table.name}: Redis at "
                    f"{settings.redis.host}:{settings.redis.port}: {type(err).__name__}: "
                    f"{err}. The lake's tables are written (serving copies refreshed: "
                    f"{done}); resuming the job redoes only the refresh"
                ) from err
            results.append(res)
            if on_result is not None:
                on_result(res)
    finally:
        if own:
            client.close()
    return results
