"""Meter readings → ODS, quarantine and the 15-minute energy indicator, as SQL.

Each function returns one SQL query; the streaming job registers them as views and
inserts them into sinks. The queries are order-, duplicate- and replay-insensitive:
aggregates are MAX/MIN/COUNT(DISTINCT) per key, so a reading that arrives twice, late
or out of order leads to the same indicator as a clean, ordered stream.
"""

from __future__ import annotations

from jobs.common.ddl import parsed_value_sql, quote, validation_reason_sql
from lakehouse.contracts import MessageContract

INTERVAL_MS = 15 * 60 * 1000


def checked_sql(contract: MessageContract, source: str) -> str:
    """Every raw message with its parsed fields and its rejection reason (NULL if valid)."""
    parsed = ",\n  ".join(
        f"{parsed_value_sql(f)} AS {quote(f.name)}" for f in contract.fields
    )
    ts = contract.event_time_field
    return (
        "SELECT\n"
        f"  {validation_reason_sql(contract)} AS `reason`,\n"
        "  `payload`, `kafka_topic`, `kafka_partition`, `kafka_offset`,\n"
        f"  {parsed},\n"
        f"  TRY_CAST(JSON_VALUE(`payload`, '$.{ts}') AS BIGINT) AS `event_ms`,\n"
        "  CAST(CURRENT_ROW_TIMESTAMP() AS TIMESTAMP_LTZ(3)) AS `ingest_ts`\n"
        f"FROM {quote(source)}"
    )


def ods_sql(contract: MessageContract, checked: str) -> str:
    """Valid messages as ODS rows (contract fields + Kafka position + ingest time)."""
    cols = ", ".join(quote(f.name) for f in contract.fields)
    ts = quote(contract.event_time_field)
    return (
        f"SELECT {cols}, `kafka_topic`, `kafka_partition`, `kafka_offset`, `ingest_ts`,\n"
        f"  DATE_FORMAT({ts}, 'yyyy-MM-dd') AS `dt`\n"
        f"FROM {quote(checked)} WHERE `reason` IS NULL"
    )


def quarantine_sql(checked: str) -> str:
    """Rejected messages with their reason and raw payload."""
    return (
        "SELECT `kafka_topic`, `kafka_partition`, `kafka_offset`, `reason`, `payload`,\n"
        "  `ingest_ts`, DATE_FORMAT(`ingest_ts`, 'yyyy-MM-dd') AS `dt`\n"
        f"FROM {quote(checked)} WHERE `reason` IS NOT NULL"
    )


def register_15min_sql(checked: str) -> str:
    """Per meter and 15-minute interval: last and first import register, reading count."""
    return (
        "SELECT `device_id`,\n"
        f"  `event_ms` - MOD(`event_ms`, {INTERVAL_MS}) AS `window_ms`,\n"
        "  MAX(`energy_import_kwh`) AS `register_last_kwh`,\n"
        "  MIN(`energy_import_kwh`) AS `register_first_kwh`,\n"
        "  COUNT(DISTINCT `event_ms`) AS `readings`\n"
        f"FROM {quote(checked)} WHERE `reason` IS NULL\n"
        f"GROUP BY `device_id`, `event_ms` - MOD(`event_ms`, {INTERVAL_MS})"
    )


def energy_15min_sql(registers: str) -> str:
    """15-minute import energy: this interval's last register minus the previous one's.

    Joining the per-interval registers to themselves (rather than ordering readings)
    keeps the result exact under duplicates and out-of-order arrival: a late reading
    updates its interval and the interval after it.
    """
    return (
        "SELECT c.`device_id`,\n"
        "  TO_TIMESTAMP_LTZ(c.`window_ms`, 3) AS `window_start`,\n"
        f"  TO_TIMESTAMP_LTZ(c.`window_ms` + {INTERVAL_MS}, 3) AS `window_end`,\n"
        "  c.`register_last_kwh` - COALESCE(p.`register_last_kwh`, c.`register_first_kwh`)"
        " AS `energy_kwh`,\n"
        "  c.`register_last_kwh`,\n"
        "  c.`readings`,\n"
        "  CASE WHEN p.`register_last_kwh` IS NULL THEN 'first_reading'"
        " ELSE 'previous_interval' END AS `baseline`,\n"
        "  CAST(CURRENT_ROW_TIMESTAMP() AS TIMESTAMP_LTZ(3)) AS `updated_ts`,\n"
        "  DATE_FORMAT(TO_TIMESTAMP_LTZ(c.`window_ms`, 3), 'yyyy-MM-dd') AS `dt`\n"
        f"FROM {quote(registers)} AS c\n"
        f"LEFT JOIN {quote(registers)} AS p\n"
        f"  ON p.`device_id` = c.`device_id` AND p.`window_ms` = c.`window_ms` - {INTERVAL_MS}"
    )
