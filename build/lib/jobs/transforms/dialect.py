"""The few SQL expressions that differ between engines, behind one small interface.

Transformations are written once, in SQL, with event times carried as epoch
milliseconds (BIGINT) until the sink. Only converting to and from timestamps, "now",
first-value aggregation and state retention hints are engine-specific;
:class:`FlinkDialect` renders them for Flink SQL (streaming), :class:`SparkDialect` for
Spark SQL (backfills). Everything else
in the transforms is SQL both engines read the same way (tested by running both).
"""

from __future__ import annotations

from typing import Protocol

from lakehouse.time import DAY_MS


class Dialect(Protocol):
    """Engine-specific SQL fragments."""

    name: str

    def ts(self, ms: str) -> str:
        """A TIMESTAMP (UTC instant, ms precision) from an epoch-millisecond expression."""

    def date(self, ms: str) -> str:
        """The UTC date ``yyyy-MM-dd`` of an epoch-millisecond expression."""

    def now(self) -> str:
        """The current time as a timestamp (``ingest_ts``: computed once per message)."""

    def stamp(self) -> str:
        """``updated_ts`` of a derived row: when this version of the row was computed."""

    def day_ms(self, dt: str) -> str:
        """Epoch milliseconds of midnight UTC of a ``yyyy-MM-dd`` string expression."""

    def first(self, expr: str) -> str:
        """Aggregate: the first non-null value received."""

    def keep_state(self, *aliases: str) -> str:
        """A hint placed after ``SELECT``: the state of these inputs never expires.

        The streaming engine expires idle state after ``flink.state_ttl``; the few
        operators keyed by device alone (DIM versions, first readings) must keep theirs
        instead: their state is one row per device, and with a retention time Flink
        re-emits an aggregate's unchanged result on every input (so that downstream state
        is refreshed), which makes the DIM join retract and re-join every fact of the
        device. A batch engine has no state: empty.
        """


class FlinkDialect:
    """Flink SQL (the session time zone is UTC, see ``runtime.flink_config``)."""

    name = "flink"

    def ts(self, ms: str) -> str:  # noqa: D102
        return f"TO_TIMESTAMP_LTZ({ms}, 3)"

    def date(self, ms: str) -> str:  # noqa: D102
        return f"DATE_FORMAT(TO_TIMESTAMP_LTZ({ms}, 3), 'yyyy-MM-dd')"

    def now(self) -> str:  # noqa: D102
        return "CAST(CURRENT_ROW_TIMESTAMP() AS TIMESTAMP_LTZ(3))"

    def stamp(self) -> str:
        """A constant: the sinks set ``updated_ts`` to their write time (``stamp.field``).

        The current time in an updating stream is recomputed for each retraction, which then
        no longer equals the row it retracts; Flink's sink materializer, which matches
        retractions by value, would keep every version and could re-emit an old one with its
        old (smaller) ``updated_ts``, losing the update in Hudi (ordered by ``updated_ts``)
        while Redis (arrival order) had it. ``jobs.common.ddl`` sets the sink option.
        """
        return "TO_TIMESTAMP_LTZ(0, 3)"

    def day_ms(self, dt: str) -> str:
        """Day arithmetic, not ``UNIX_TIMESTAMP``.

        Flink counts ``UNIX_TIMESTAMP`` non-deterministic (its no-argument form is "now"),
        which the update determinism check of the compiled plan refuses.
        """
        return (f"CAST(TIMESTAMPDIFF(DAY, TIMESTAMP '1970-01-01 00:00:00',"
                f" CAST(CAST({dt} AS DATE) AS TIMESTAMP(3))) AS BIGINT) * {DAY_MS}")

    def first(self, expr: str) -> str:  # noqa: D102
        return f"FIRST_VALUE({expr})"

    def keep_state(self, *aliases: str) -> str:  # noqa: D102
        pairs = ", ".join(f"'{a}'='0 ms'" for a in aliases)
        return f"/*+ STATE_TTL({pairs}) */ "


FLINK = FlinkDialect()

#: Column of the batch input views giving each row's arrival order (see SparkDialect.first).
ARRIVAL = "arrival"


class SparkDialect:
    """Spark SQL (session time zone UTC, see ``infra.spark.spark_session``).

    A stream's ``FIRST_VALUE`` is the first non-null value in arrival order. A batch has no
    arrival order of its own, so the input views carry it as a column ``arrival`` (ingest
    time, Kafka partition, offset) and the first value is the one with the least arrival.

    Args:
        as_of_ms: "Now" for ``updated_ts`` (epoch ms): a backfill stamps its rows with the
            time of the lake snapshot it read, so that a row the stream computed later
            (from newer data) wins over it. None: the query's current time.

    """

    name = "spark"

    def __init__(self, as_of_ms: int | None = None) -> None:
        self.as_of_ms = as_of_ms

    def ts(self, ms: str) -> str:  # noqa: D102
        return f"timestamp_millis({ms})"

    def date(self, ms: str) -> str:  # noqa: D102
        return f"date_format(timestamp_millis({ms}), 'yyyy-MM-dd')"

    def now(self) -> str:  # noqa: D102
        if self.as_of_ms is None:
            return "current_timestamp()"
        return f"timestamp_millis(CAST({int(self.as_of_ms)} AS BIGINT))"

    def stamp(self) -> str:  # noqa: D102
        return self.now()

    def day_ms(self, dt: str) -> str:  # noqa: D102
        return f"unix_timestamp({dt}, 'yyyy-MM-dd') * 1000"

    def first(self, expr: str) -> str:  # noqa: D102
        return f"min_by({expr}, CASE WHEN {expr} IS NOT NULL THEN `{ARRIVAL}` END)"

    def keep_state(self, *aliases: str) -> str:  # noqa: D102
        return ""


SPARK = SparkDialect()
