"""Layout of the serving copy (Redis) shared by the writers (Flink, backfills) and the API.

A row of a table is a hash at ``<prefix><layer>:<subject>:<k1>|<k2>...``; the sorted set
``...:index`` holds every row's key suffix scored by the table's time column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
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
        return java_double_string(float(value))
    return str(value)


def row_member(table: TableContract, row: Mapping[str, Any]) -> str:
    """A row's key suffix (and index member): its record key values joined by ``|``."""
    by_name = {f.name: f for f in table.fields}
    return KEY_SEPARATOR.join(str(serving_value(by_name[k], row[k])) for k in table.record_key)


def java_double_string(value: float) -> str:
    """``value`` as Java's ``Double.toString`` renders it (the connector's DOUBLE format).

    The shortest decimal that reads back as ``value`` (when one digit is enough, the
    closest decimal of one or two digits), in plain notation with at least one fractional
    digit for magnitudes in [10^-3, 10^7) (``100.0``, ``0.001``), else as
    ``<d>.<digits>E<exponent>`` (``1.0E7``, ``1.5E-4``); ``NaN``, ``Infinity``,
    ``-Infinity``, ``0.0``, ``-0.0``. That is the JDK 19+ specification; JDK 17 agrees
    for every magnitude below 10^16 except the smallest subnormals, above it it may print
    more digits of the same double.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    digits, exp = _shortest_digits(magnitude)
    if 1e-3 <= magnitude < 1e7:
        if exp < 0:
            return f"{sign}0.{'0' * (-exp - 1)}{digits}"
        whole = digits[:exp + 1].ljust(exp + 1, "0")
        return f"{sign}{whole}.{digits[exp + 1:] or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exp}"


def _shortest_digits(magnitude: float) -> tuple[str, int]:
    """Significant digits ``d1d2...`` and exponent ``e`` with ``magnitude = d1.d2... × 10^e``.

    Python's ``repr`` gives the shortest round-tripping digits (closest on ties); Java
    also considers two digits when one suffices, and takes them if they are closer.
    """
    digits, exp = _digits_of(Decimal(repr(magnitude)))
    if len(digits) == 1:
        with localcontext() as ctx:
            ctx.prec = 1100  # exact arithmetic on any double's binary value
            exact = Decimal(magnitude)
            two = exact.quantize(Decimal(1).scaleb(exp - 1), rounding=ROUND_HALF_EVEN)
            one = Decimal(int(digits)).scaleb(exp)
            if float(two) == magnitude and abs(two - exact) < abs(one - exact):
                return _digits_of(two)
    return digits, exp


def _digits_of(d: Decimal) -> tuple[str, int]:
    """(significant digits without trailing zeros, exponent of the first) of a positive ``d``."""
    t = d.as_tuple()
    return "".join(map(str, t.digits)).rstrip("0"), int(t.exponent) + len(t.digits) - 1


def hash_fields(table: TableContract, row: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A row as the connector writes its hash: (non-null columns rendered, null columns).

    The first are set with ``HSET``, the second removed with ``HDEL``, so that the hash
    always equals the latest row. A column missing from ``row`` counts as null.
    """
    present: dict[str, str] = {}
    absent: list[str] = []
    for f in table.fields:
        value = serving_value(f, row.get(f.name))
        if value is None:
            absent.append(f.name)
        else:
            present[f.name] = value
    return present, absent


def index_score(table: TableContract, score_field: str, row: Mapping[str, Any]) -> float:
    """A row's score in the ``index`` sorted set, as the connector computes it.

    The score column's value (TIMESTAMP in epoch milliseconds, ``row`` gives them so);
    0 when it is null.
    """
    if score_field not in table.field_names:
        raise KeyError(f"{table.name} has no column {score_field!r} to score its index")
    value = row.get(score_field)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    return float(value)
