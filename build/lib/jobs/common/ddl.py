"""Flink SQL DDL rendered from the contracts in lakehouse/.

No column list is written by hand anywhere: sources, sinks and validation come from
:class:`~lakehouse.contracts.MessageContract` and :class:`~lakehouse.contracts.TableContract`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from infra.lake import hudi_table_path
from infra.settings import GridLakeSettings
from lakehouse.contracts import Field, FieldType, MessageContract, TableContract
from lakehouse.contracts.serving import serving_key_prefix
from lakehouse.contracts.tables import UPDATED

FLINK_TYPES: Mapping[FieldType, str] = {
    FieldType.STRING: "STRING",
    FieldType.INT: "INT",
    FieldType.BIGINT: "BIGINT",
    FieldType.DOUBLE: "DOUBLE",
    FieldType.BOOLEAN: "BOOLEAN",
    FieldType.TIMESTAMP: "TIMESTAMP_LTZ(3)",
}

def quote(identifier: str) -> str:
    """Quote a SQL identifier with backticks."""
    return f"`{identifier}`"


def sql_string(value: str) -> str:
    """Render a Python string as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def with_clause(options: Mapping[str, str]) -> str:
    """Render a ``WITH (...)`` option list."""
    body = ",\n  ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in options.items())
    return f"WITH (\n  {body}\n)"


def column_list(fields: Iterable[Field], key: Iterable[str] = ()) -> str:
    """Render column definitions; key columns are NOT NULL."""
    keys = set(key)
    cols = []
    for f in fields:
        not_null = " NOT NULL" if f.name in keys else ""
        cols.append(f"{quote(f.name)} {FLINK_TYPES[f.type]}{not_null}")
    return ",\n  ".join(cols)


def topic_name(settings: GridLakeSettings, contract: MessageContract) -> str:
    """Full Kafka topic of a message contract."""
    return settings.kafka.topic_prefix + contract.topic


def kafka_raw_source_ddl(
    settings: GridLakeSettings, contract: MessageContract, name: str, group_id: str
) -> str:
    """A Kafka source reading each message value as one raw string plus its position.

    Parsing happens in SQL afterwards so that a malformed message becomes a quarantine
    row instead of a deserialisation failure that stops the job. ``proc_time`` orders
    the per-partition watermark computed in SQL (see ``jobs.transforms.ingest``).
    """
    options = {
        "connector": "kafka",
        "topic": topic_name(settings, contract),
        "properties.bootstrap.servers": settings.kafka.bootstrap,
        "properties.group.id": group_id,
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "format": "raw",
        "raw.charset": "UTF-8",
    }
    return (
        f"CREATE TEMPORARY TABLE {quote(name)} (\n"
        "  `payload` STRING,\n"
        "  `kafka_topic` STRING METADATA FROM 'topic' VIRTUAL,\n"
        "  `kafka_partition` INT METADATA FROM 'partition' VIRTUAL,\n"
        "  `kafka_offset` BIGINT METADATA FROM 'offset' VIRTUAL,\n"
        "  `proc_time` AS PROCTIME()\n"
        f") {with_clause(options)}"
    )


REASON_FUNCTION = "GRIDLAKE_REASON"
REASON_FUNCTION_CLASS = "io.gridlake.flink.udf.ContractReason"


def reason_function_ddl() -> str:
    """Registers the JVM contract check used by :func:`validation_reason_sql`."""
    return (
        f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {REASON_FUNCTION} "
        f"AS '{REASON_FUNCTION_CLASS}' LANGUAGE JAVA"
    )


def contract_spec(contract: MessageContract) -> str:
    """The contract as the check function's spec string: ``name:type:required;...``."""
    return ";".join(
        f"{f.name}:{f.type.value}:{1 if f.required else 0}" for f in contract.fields
    )


def validation_reason_sql(contract: MessageContract, payload: str = "payload") -> str:
    """SQL expression giving why a raw payload violates ``contract`` (NULL when valid).

    Reasons match :meth:`MessageContract.validate`: ``empty_payload``,
    ``malformed_json``, ``not_an_object``, ``missing_field:X``, ``bad_type:X``. The check
    is the JVM function registered by :func:`reason_function_ddl`.
    """
    return f"{REASON_FUNCTION}({quote(payload)}, {sql_string(contract_spec(contract))})"


def parsed_value_sql(f: Field, payload: str = "payload") -> str:
    """SQL expression extracting one typed field from a (valid) JSON payload."""
    p = quote(payload)
    path = f"'$.{f.name}'"
    # JSON_VALUE cannot return BIGINT and its RETURNING DOUBLE throws on string tokens,
    # so values are extracted as text and TRY_CAST (never failing the job on a row the
    # validation will quarantine anyway).
    if f.type is FieldType.STRING:
        return f"JSON_VALUE({p}, {path})"
    if f.type is FieldType.TIMESTAMP:
        return f"TO_TIMESTAMP_LTZ(TRY_CAST(JSON_VALUE({p}, {path}) AS BIGINT), 3)"
    return f"TRY_CAST(JSON_VALUE({p}, {path}) AS {FLINK_TYPES[f.type]})"


def project_sql(table: TableContract, source: str, computed: Mapping[str, str]) -> str:
    """``SELECT`` of ``table``'s columns, in order, from ``source``.

    Args:
        table: The target table.
        source: View or table to select from.
        computed: Column → SQL expression for columns not taken as they are.

    """
    cols = [
        f"{computed[f.name]} AS {quote(f.name)}" if f.name in computed else quote(f.name)
        for f in table.fields
    ]
    return "SELECT " + ",\n  ".join(cols) + f"\nFROM {quote(source)}"




def stamp_options(table: TableContract) -> dict[str, str]:
    """Sink option that stamps ``updated_ts`` with the write time (see ``FlinkDialect.stamp``)."""
    return {"stamp.field": UPDATED.name} if UPDATED.name in table.field_names else {}


def hudi_sink_ddl(
    settings: GridLakeSettings,
    table: TableContract,
    extra: Mapping[str, str] | None = None,
    *,
    stamp: bool = True,
) -> str:
    """A ``gridlake-hudi`` sink table for ``table`` (upsert by its record key).

    ``stamp``: the sink sets ``updated_ts`` to its write time (the streaming job's rows); off
    for loads whose rows carry their own ``updated_ts``.
    """
    options = {
        "connector": "gridlake-hudi",
        "path": hudi_table_path(settings, table),
        "table.name": table.name,
        "table.type": table.table_type,
        "record.key.fields": ",".join(table.record_key),
        "ordering.field": table.ordering_field,
    }
    if table.partition_fields:
        options["partition.path.field"] = ",".join(table.partition_fields)
    if stamp:
        options.update(stamp_options(table))
    options.update(settings.lake.hoodie_options())
    options.update(table.extra)
    options.update(extra or {})
    pk = ", ".join(quote(k) for k in table.record_key)
    return (
        f"CREATE TEMPORARY TABLE {quote(table.name)} (\n  "
        f"{column_list(table.fields, table.record_key)},\n"
        f"  PRIMARY KEY ({pk}) NOT ENFORCED\n"
        f") {with_clause(options)}"
    )


def redis_sink_ddl(settings: GridLakeSettings, table: TableContract, score_field: str,
                   *, stamp: bool = True) -> str:
    """A ``gridlake-redis`` sink: the serving copy of ``table`` (one hash per key).

    Ordered by the table's ordering field, as the lake and every writer of the copy
    (:mod:`infra.serving_store`). ``stamp`` as for :func:`hudi_sink_ddl`.
    """
    options = {
        "connector": "gridlake-redis",
        "url": settings.redis.url,
        "key.prefix": serving_key_prefix(settings.redis.key_prefix, table),
        "index.score.field": score_field,
        "ordering.field": table.ordering_field,
        **(stamp_options(table) if stamp else {}),
    }
    pk = ", ".join(quote(k) for k in table.record_key)
    return (
        f"CREATE TEMPORARY TABLE {quote(table.name + '_serving')} (\n  "
        f"{column_list(table.fields, table.record_key)},\n"
        f"  PRIMARY KEY ({pk}) NOT ENFORCED\n"
        f") {with_clause(options)}"
    )
