"""ODS layer: raw messages → validated rows (ODS) or quarantine rows, as SQL.

:func:`checked_sql` parses every raw message of one topic and classifies it; ODS and
quarantine are two filters of that one view, so every message read lands in exactly one
of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobs.common.ddl import parsed_value_sql, quote, validation_reason_sql
from jobs.transforms.dialect import FLINK, Dialect
from lakehouse.contracts import MessageContract


def checked_sql(
    contract: MessageContract,
    source: str,
    watermark_delay_ms: int,
    allowed_lateness_ms: int,
    d: Dialect = FLINK,
) -> str:
    """Every raw message with its parsed fields, rejection reason and lateness.

    The watermark of a Kafka partition is the largest event time of the valid messages
    read from it so far minus ``watermark_delay_ms`` (computed in SQL, so it depends only
    on the order of the partition, not on timers). ``lateness`` is ``on_time``, ``late``
    (behind the watermark) or ``too_late`` (more than ``allowed_lateness_ms`` behind it).
    """
    parsed = ",\n    ".join(
        f"{parsed_value_sql(f)} AS {quote(f.name)}" for f in contract.fields
    )
    ts = contract.event_time_field
    seen = (
        "MAX(CASE WHEN `reason` IS NULL THEN `event_ms` END) OVER (PARTITION BY "
        "`kafka_partition` ORDER BY `proc_time` ROWS BETWEEN UNBOUNDED PRECEDING AND "
        "CURRENT ROW)"
    )
    late, too_late = watermark_delay_ms, watermark_delay_ms + allowed_lateness_ms
    return (
        "SELECT *,\n"
        f"  CASE WHEN `reason` IS NOT NULL THEN CAST(NULL AS STRING)\n"
        f"    WHEN `event_ms` < {seen} - {too_late} THEN 'too_late'\n"
        f"    WHEN `event_ms` < {seen} - {late} THEN 'late'\n"
        "    ELSE 'on_time' END AS `lateness`\n"
        "FROM (\n"
        "  SELECT\n"
        f"    {validation_reason_sql(contract)} AS `reason`,\n"
        "    `payload`, `kafka_topic`, `kafka_partition`, `kafka_offset`, `proc_time`,\n"
        f"    {parsed},\n"
        f"    TRY_CAST(JSON_VALUE(`payload`, '$.{ts}') AS BIGINT) AS `event_ms`,\n"
        f"    {d.now()} AS `ingest_ts`\n"
        f"  FROM {quote(source)}\n"
        ")"
    )


def ods_sql(contract: MessageContract, checked: str, d: Dialect = FLINK) -> str:
    """Valid messages as ODS rows (contract fields + Kafka position + ingest time)."""
    cols = ", ".join(quote(f.name) for f in contract.fields)
    return (
        f"SELECT {cols}, `kafka_topic`, `kafka_partition`, `kafka_offset`, `ingest_ts`,"
        " `lateness`,\n"
        f"  {d.date('`event_ms`')} AS `dt`\n"
        f"FROM {quote(checked)} WHERE `reason` IS NULL"
    )


def quarantine_sql(checked: Sequence[str]) -> str:
    """Rejected messages of every topic with their reason and raw payload."""
    parts = [
        "SELECT `kafka_topic`, `kafka_partition`, `kafka_offset`, `reason`, `payload`,\n"
        "  `ingest_ts`, DATE_FORMAT(`ingest_ts`, 'yyyy-MM-dd') AS `dt`\n"
        f"FROM {quote(c)} WHERE `reason` IS NOT NULL"
        for c in checked
    ]
    return "\nUNION ALL\n".join(parts)
