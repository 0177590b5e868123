"""Lakehouse tables (Hudi on HDFS), declared once for every engine."""

from __future__ import annotations

from lakehouse.contracts.messages import METER_READING
from lakehouse.contracts.schema import Field, FieldType, TableContract

S, INT, B, D, TS = (
    FieldType.STRING, FieldType.INT, FieldType.BIGINT, FieldType.DOUBLE, FieldType.TIMESTAMP,
)

INGEST_FIELDS: tuple[Field, ...] = (
    Field("kafka_topic", S, description="Topic the message was read from."),
    Field("kafka_partition", INT, description="Partition the message was read from."),
    Field("kafka_offset", B, description="Offset of the message in its partition."),
    Field("ingest_ts", TS, "ms", "When the streaming job ingested the message."),
    Field("dt", S, description="Partition: event date (UTC) yyyy-MM-dd."),
)

ODS_METER_READING = TableContract(
    name="ods_meter_reading",
    layer="ods",
    fields=(*METER_READING.fields, *INGEST_FIELDS),
    # One row per Kafka record: a replay re-writes the same keys, a device's duplicate
    # reading is kept as received (DWD de-duplicates).
    record_key=("kafka_topic", "kafka_partition", "kafka_offset"),
    ordering_field="ingest_ts",
    partition_fields=("dt",),
    description="Every schema-valid meter reading exactly as received, with its Kafka position.",
    fed_by="stream job `meter_pipeline` from topic meter.readings",
)

QUARANTINE = TableContract(
    name="ods_quarantine",
    layer="ods",
    fields=(
        Field("kafka_topic", S, description="Topic the message was read from."),
        Field("kafka_partition", INT, description="Partition the message was read from."),
        Field("kafka_offset", B, description="Offset of the message in its partition."),
        Field("reason", S, description="Why it was rejected, e.g. missing_field:ts."),
        Field("payload", S, description="The raw message value as received.", required=False),
        Field("ingest_ts", TS, "ms", "When the streaming job ingested the message."),
        Field("dt", S, description="Partition: ingest date (UTC) yyyy-MM-dd."),
    ),
    record_key=("kafka_topic", "kafka_partition", "kafka_offset"),
    ordering_field="ingest_ts",
    partition_fields=("dt",),
    description="Messages that are not valid JSON or violate their topic's contract.",
    fed_by="stream job `meter_pipeline` (topic meter.readings)",
)

ADS_METER_ENERGY_15MIN = TableContract(
    name="ads_meter_energy_15min",
    layer="ads",
    fields=(
        Field("device_id", S, description="Meter id."),
        Field("window_start", TS, "ms", "Start of the 15-minute interval (UTC)."),
        Field("window_end", TS, "ms", "End of the interval (exclusive)."),
        Field("energy_kwh", D, "kWh",
              "Import energy in the interval: last register in it minus the last register "
              "of the previous interval (or the first register in it when the previous "
              "interval has no reading)."),
        Field("register_last_kwh", D, "kWh", "Last (largest) import register in the interval."),
        Field("readings", B, "", "Distinct readings in the interval."),
        Field("baseline", S, "", "previous_interval or first_reading."),
        Field("updated_ts", TS, "ms", "When this version of the row was computed."),
        Field("dt", S, description="Partition: interval date (UTC) yyyy-MM-dd."),
    ),
    record_key=("device_id", "window_start"),
    ordering_field="updated_ts",
    partition_fields=("dt",),
    description="15-minute import energy per meter (one row per meter and interval).",
    fed_by="stream job `meter_pipeline` from the validated readings",
)

TABLES: tuple[TableContract, ...] = (ODS_METER_READING, QUARANTINE, ADS_METER_ENERGY_15MIN)
