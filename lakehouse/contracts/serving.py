"""Layout of the serving copy (Redis) shared by the writer (Flink) and the reader (API).

A row of a table is a hash at ``<prefix><layer>:<subject>:<k1>|<k2>...``; the sorted set
``...:index`` holds every row's key suffix scored by the table's time column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lakehouse.contracts.schema import Field, FieldType, TableContract

KEY_SEPARATOR = "|"


def serving_key_prefix(global_prefix: str, table: TableContract) -> str:
    """Key prefix of ``table``'s rows, e.g. ``gridlake:ads:meter_energy_15min:``."""
    subject = table.name.removeprefix(f"{table.layer}_")
    return f"{global_prefix}{table.layer}:{subject}:"


def index_key(global_prefix: str, table: TableContract) -> str:
    """Sorted set indexing ``table``'s rows by time."""
    return serving_key_prefix(global_prefix, table) + "index"


def events_channel(global_prefix: str, table: TableContract) -> str:
    """Pub/sub channel announcing that new rows of ``table`` landed."""
    return serving_key_prefix(global_prefix, table) + "events"


def serving_value(field: Field, value: Any) -> str | None:
    """A column value as the serving copy stores it (``None`` for null: field absent).

    Same rendering as the ``gridlake-redis`` connector (docs/connectors.md): TIMESTAMP as
    epoch-millisecond digits (``value`` given in epoch ms), BOOLEAN ``true``/``false``,
    numbers and strings as text.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if field.type is FieldType.BOOLEAN:
        return "true" if value else "false"
    if field.type in (FieldType.TIMESTAMP, FieldType.INT, FieldType.BIGINT):
        return str(int(value))
    if field.type is FieldType.DOUBLE:
        return repr(float(value))
    return str(value)


def row_member(table: TableContract, row: Mapping[str, Any]) -> str:
    """A row's key suffix (and index member): its record key values joined by ``|``."""
    by_name = {f.name: f for f in table.fields}
    return KEY_SEPARATOR.join(str(serving_value(by_name[k], row[k])) for k in table.record_key)
