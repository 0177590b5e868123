"""DIM and DWD layers as SQL: device history (SCD2) and clean, enriched, flagged detail.

Every query here is insensitive to arrival order and duplicates: de-duplication is a
GROUP BY on (device, event time), the previous reading is an equi-join on the expected
previous event time, and the DIM version is a join on the validity interval. A record
arriving late therefore updates its own row and its neighbours' flags, and a replay
rewrites the same keys.
"""

from __future__ import annotations

from jobs.common.ddl import project_sql, quote, sql_string
from jobs.transforms.dialect import FLINK, Dialect
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.contracts.quality import RULES, SPIKE_RATIO, DwdSpec
from lakehouse.contracts.tables import DIM_DEVICE, DWD_TABLES, HIERARCHY

_REGISTRY_ATTRS = tuple(f.name for f in DEVICE_REGISTRY.fields if f.name not in ("device_id", "ts"))


def registry_versions_sql(checked: str, d: Dialect = FLINK) -> str:
    """One row per (device, version number): a re-sent version is a copy, not a change.

    The version starts at the earliest event time of its copies; the attributes are the
    first copy's (as for telemetry duplicates). A registry that re-publishes its devices
    (a simulator restart, a compacted topic re-read) therefore changes nothing downstream.
    """
    attrs = ",\n  ".join(
        f"{d.first(quote(a))} AS {quote(a)}" for a in _REGISTRY_ATTRS if a != "version"
    )
    return (
        f"SELECT {d.keep_state('r')}`device_id`, `version`,\n"
        "  MIN(`event_ms`) AS `valid_from_ms`,\n"
        f"  {attrs}\n"
        f"FROM {quote(checked)} AS r WHERE `reason` IS NULL\n"
        "GROUP BY `device_id`, `version`"
    )


def dim_versions_sql(versions: str, d: Dialect = FLINK) -> str:
    """Versions with their validity end: the next version's start (NULL when current).

    Versions are ordered by start time, then version number (two versions taking effect
    in the same millisecond: the higher number wins from then on).
    """
    names = ("device_id", "valid_from_ms", *_REGISTRY_ATTRS)
    cols = ", ".join(quote(a) for a in names)
    inner = ", ".join(f"c.{quote(a)}" for a in names)
    return (
        f"SELECT {d.keep_state('j')}{cols}, MIN(`next_from_ms`) AS `valid_to_ms`\n"
        f"FROM (\n"
        f"  SELECT {d.keep_state('c', 'n')}{inner}, n.`valid_from_ms` AS `next_from_ms`\n"
        f"  FROM {quote(versions)} AS c\n"
        f"  LEFT JOIN {quote(versions)} AS n\n"
        "    ON n.`device_id` = c.`device_id` AND (n.`valid_from_ms` > c.`valid_from_ms`\n"
        "      OR (n.`valid_from_ms` = c.`valid_from_ms` AND n.`version` > c.`version`))\n"
        ") AS j\n"
        f"GROUP BY {cols}"
    )


def dim_device_sql(dim: str, d: Dialect = FLINK) -> str:
    """Rows of ``dim_device`` from the versions view."""
    return project_sql(DIM_DEVICE, dim, {
        "valid_from": d.ts("`valid_from_ms`"), "valid_to": d.ts("`valid_to_ms`"),
        "is_current": "`valid_to_ms` IS NULL", "updated_ts": d.stamp(),
    })


def dedup_sql(spec: DwdSpec, checked: str, d: Dialect = FLINK) -> str:
    """Valid readings de-duplicated by (device, event time), first copy kept, copies counted."""
    key = spec.message.key_field
    measures = [m.source.name for m in spec.measures]
    firsts = [
        *measures, "seq", "lateness", "kafka_topic", "kafka_partition", "kafka_offset",
        "ingest_ts",
    ]
    aggs = ",\n  ".join(f"{d.first(quote(c))} AS {quote(c)}" for c in firsts)
    return (
        f"SELECT {quote(key)} AS `device_id`, `event_ms`,\n"
        f"  {aggs},\n"
        "  COUNT(*) AS `copies`\n"
        f"FROM {quote(checked)} WHERE `reason` IS NULL\n"
        f"GROUP BY {quote(key)}, `event_ms`"
    )


def first_seen_sql(dedup: str, d: Dialect = FLINK) -> str:
    """Each device's earliest event time (a gap needs an earlier reading)."""
    return (
        f"SELECT {d.keep_state('x')}`device_id`, MIN(`event_ms`) AS `first_ms`\n"
        f"FROM {quote(dedup)} AS x GROUP BY `device_id`"
    )


def _interval(spec: DwdSpec, alias: str) -> str:
    if spec.interval_field:
        return f"CAST({alias}.{quote(spec.interval_field)} AS BIGINT) * 1000"
    assert spec.interval_ms is not None, f"{spec.name}: no interval"
    return str(spec.interval_ms)


def _scaled(spec: DwdSpec, name: str, alias: str) -> str:
    m = spec.measure(name)
    col = f"{alias}.{quote(m.source.name)}"
    return col if m.scale == 1.0 else f"{col} * {m.scale!r}"


def _flag_exprs(spec: DwdSpec) -> dict[str, str]:
    ranges = []
    for m in spec.range_checked():
        f = m.field
        col = _scaled(spec, m.name, "f")
        if f.minimum is not None:
            ranges.append(f"{col} < {f.minimum!r}")
        if f.maximum is not None:
            ranges.append(f"{col} > {f.maximum!r}")
    spikes = [
        f"(ABS({_scaled(spec, c, 'f')} - {_scaled(spec, c, 'p')}) > {delta!r} AND "
        f"ABS({_scaled(spec, c, 'f')}) > {SPIKE_RATIO!r} * ABS({_scaled(spec, c, 'p')}))"
        for c, delta in spec.spike.items()
    ]
    stuck = [f"{_scaled(spec, c, 'f')} = {_scaled(spec, c, 'p')}" for c in spec.stuck]
    has_prev = "p.`device_id` IS NOT NULL"
    exprs = {
        "duplicate": "f.`copies` > 1",
        "late": "f.`lateness` = 'late'",
        "too_late": "f.`lateness` = 'too_late'",
        "unknown_device": "d.`device_id` IS NULL",
        "range": " OR ".join(ranges) if ranges else "FALSE",
        "spike": f"{has_prev} AND ({' OR '.join(spikes)})" if spikes else "FALSE",
        "stuck": f"{has_prev} AND {' AND '.join(stuck)}" if stuck else "FALSE",
        "gap": "p.`device_id` IS NULL AND f.`event_ms` > s.`first_ms`",
    }
    # Comparisons with NULL (an optional value absent) are "not violated", not unknown.
    return {k: f"COALESCE({v}, FALSE)" for k, v in exprs.items()}


def dwd_sql(spec: DwdSpec, dedup: str, first_seen: str, dim: str, d: Dialect = FLINK) -> str:
    """The enriched, flagged detail rows of one telemetry type (BIGINT event_ms kept).

    Joins: the DIM version valid at the event time (version 1 also covers earlier
    telemetry), the previous reading (event time − nominal interval), and the device's
    first event time. The DIM and first-time sides keep their state (one row per device
    and version); the facts' state expires after the stream's state retention.
    """
    flags = _flag_exprs(spec)
    self_col = {"substation": "substation_id", "feeder": "feeder_id",
                "transformer": "transformer_id"}.get(spec.device_type)
    hier = []
    for col in HIERARCHY:
        expr = f"COALESCE(d.{quote(col)}, f.`device_id`)" if col == self_col else f"d.{quote(col)}"
        hier.append(f"{expr} AS {quote(col)}")
    measures = [f"{_scaled(spec, m.name, 'f')} AS {quote(m.name)}" for m in spec.measures]
    flag_cols = [f"{expr} AS `flag_{name}`" for name, expr in flags.items()]
    names = ", ".join(
        f"CASE WHEN {flags[r.name]} THEN {sql_string(r.name)} END" for r in RULES
    )
    excluding = " OR ".join(flags[r.name] for r in RULES if r.excludes)
    cols = [
        "f.`device_id`", "f.`event_ms`", *measures, "f.`seq`", *hier,
        "d.`version` AS `dim_version`", "f.`copies`", *flag_cols,
        f"CONCAT_WS(',', {names}) AS `quality_flags`",
        f"NOT ({excluding}) AS `usable`",
        "f.`kafka_topic`", "f.`kafka_partition`", "f.`kafka_offset`", "f.`ingest_ts`",
        f"CAST({_interval(spec, 'f')} AS BIGINT) AS `interval_ms`",
    ]
    return (
        f"SELECT {d.keep_state('d', 's')}" + ",\n  ".join(cols) + "\n"
        f"FROM {quote(dedup)} AS f\n"
        f"LEFT JOIN {quote(dim)} AS d\n"
        "  ON d.`device_id` = f.`device_id`\n"
        "  AND (d.`version` = 1 OR f.`event_ms` >= d.`valid_from_ms`)\n"
        "  AND (d.`valid_to_ms` IS NULL OR f.`event_ms` < d.`valid_to_ms`)\n"
        f"LEFT JOIN {quote(dedup)} AS p\n"
        f"  ON p.`device_id` = f.`device_id` AND p.`event_ms` = f.`event_ms` - "
        f"{_interval(spec, 'f')}\n"
        f"LEFT JOIN {quote(first_seen)} AS s ON s.`device_id` = f.`device_id`"
    )


def dwd_table_sql(spec: DwdSpec, dwd: str, d: Dialect = FLINK) -> str:
    """Rows of ``dwd_<name>`` from the detail view."""
    return project_sql(DWD_TABLES[spec.name], dwd, {
        "event_ts": d.ts("`event_ms`"), "updated_ts": d.stamp(), "dt": d.date("`event_ms`"),
    })
