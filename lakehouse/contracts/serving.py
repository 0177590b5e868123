"""Layout of the serving copy (Redis) shared by the writer (Flink) and the reader (API).

A row of a table is a hash at ``<prefix><layer>:<subject>:<k1>|<k2>...``; the sorted set
``...:index`` holds every row's key suffix scored by the table's time column.
"""

from __future__ import annotations

from lakehouse.contracts.schema import TableContract

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
