"""The vocabulary of contracts: typed fields, Kafka messages and lakehouse tables.

Engines (Flink DDL, Spark schemas, pydantic models) are rendered from these objects by
their own packages; this module only describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FieldType(StrEnum):
    """Logical field types, mapped to each engine's types by its renderer."""

    STRING = "string"
    INT = "int"
    BIGINT = "bigint"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"  # UTC instant, millisecond precision


@dataclass(frozen=True)
class Field:
    """One field of a message or table.

    Attributes:
        name: Column / JSON key name (snake_case).
        type: Logical type.
        unit: Physical unit ("kWh", "V", ...) or "" when dimensionless.
        description: What the value means, for docs and OpenAPI.
        required: Whether a message without it is schema-violating.
        minimum: Smallest physically plausible value (quality rule "range"), if any.
        maximum: Largest physically plausible value, if any.

    """

    name: str
    type: FieldType
    unit: str = ""
    description: str = ""
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any) -> str | None:
        """Return why ``value`` violates this field's type, or None when it conforms."""
        if value is None:
            return f"missing_field:{self.name}" if self.required else None
        ok: bool
        if self.type is FieldType.STRING:
            ok = isinstance(value, str) and value != ""
        elif self.type in (FieldType.INT, FieldType.BIGINT, FieldType.TIMESTAMP):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is FieldType.DOUBLE:
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(float(value))
            )
        else:
            ok = isinstance(value, bool)
        return None if ok else f"bad_type:{self.name}"


@dataclass(frozen=True)
class TopicSpec:
    """A Kafka topic GridLake creates."""

    name: str
    compacted: bool = False
    description: str = ""


@dataclass(frozen=True)
class MessageContract:
    """The JSON message a device publishes to one topic.

    Attributes:
        name: Short name of the message kind ("meter_reading").
        topic: Topic suffix; the full topic name is ``settings.kafka.topic_prefix + topic``.
        key_field: Field used as the Kafka message key (keeps one device on one partition).
        event_time_field: Epoch-milliseconds field carrying event time.
        fields: Payload fields, in order.
        description: What one message means.
        compacted: Whether the topic is log-compacted (latest value per key is kept),
            e.g. for dimension data keyed by device id.

    """

    name: str
    topic: str
    key_field: str
    event_time_field: str
    fields: tuple[Field, ...]
    description: str = ""
    compacted: bool = False

    def field(self, name: str) -> Field:
        """Return the field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def validate(self, payload: Any) -> str | None:
        """Return the first reason ``payload`` violates the contract, or None if it conforms.

        The same reasons (``malformed_json``, ``not_an_object``, ``missing_field:X``,
        ``bad_type:X``) are produced by the streaming job's SQL validation.
        """
        if not isinstance(payload, dict):
            return "not_an_object"
        for f in self.fields:
            reason = f.check(payload.get(f.name))
            if reason:
                return reason
        return None


@dataclass(frozen=True)
class TableContract:
    """A lakehouse table (Hudi), declared once.

    Attributes:
        name: Table name, ``<layer>_<subject>``.
        layer: One of ods, dim, dwd, dws, ads.
        fields: Columns, in order.
        record_key: Columns whose values identify a row (upserts replace by this key).
        ordering_field: Column deciding which version of a key wins (higher wins).
        partition_fields: Hudi partition path columns.
        description: What one row means (its grain).
        fed_by: What produces the table.
        retention_days: How long rows are kept (None: forever).
        table_type: Hudi table type (COPY_ON_WRITE or MERGE_ON_READ).
        grain: What one row stands for, e.g. "one reading per device and event time".
        index_type: Hudi index locating a key's file group (the same for every writer).
        extra: Additional sink options (Hudi write configs).

    """

    name: str
    layer: str
    fields: tuple[Field, ...]
    record_key: tuple[str, ...]
    ordering_field: str
    partition_fields: tuple[str, ...] = ()
    description: str = ""
    fed_by: str = ""
    retention_days: int | None = None
    table_type: str = "COPY_ON_WRITE"
    grain: str = ""
    index_type: str = "SIMPLE"
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names")
        for col in (*self.record_key, self.ordering_field, *self.partition_fields):
            if col not in names:
                raise ValueError(f"{self.name}: {col!r} is not a field")

    @property
    def field_names(self) -> list[str]:
        """Column names in order."""
        return [f.name for f in self.fields]
