"""How many decimals a value deserves: one table, by unit, used wherever values are shown.

Summaries are sums and means of doubles, so a stored value carries binary noise
(``0.005000000000109139`` kWh, ``72.57000000000001`` %). The lake keeps full precision —
a roll-up of rounded values would add rounding errors — and the answers round once, at
their output (:mod:`api.output`), to the decimals of the column's unit below. The table is
the resolution of the measurements behind the values: meters count 1 Wh, voltages are
read to 0.01 V, temperatures to 0.1 °C. docs/indicators.md shows the same table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lakehouse.contracts.schema import Field, FieldType

UNIT_DECIMALS: dict[str, int] = {
    "kWh": 3, "kW": 3, "kvar": 3, "kVA": 3, "MWh": 6,
    "V": 2, "kV": 5, "mV": 1, "A": 2,
    "°C": 1, "%": 2, "pct": 2, "pu": 4, "Hz": 3,
    "h": 3, "min": 1, "s": 3, "ppm": 1, "W/m2": 1, "W/m²": 1, "km": 3, "°": 6,
    "": 4,  # dimensionless ratios and scores (power factor, anomaly score)
}
"""Decimals per unit (the empty unit: a dimensionless ratio or score)."""

FIELD_DECIMALS: dict[str, int] = {
    # A day's insulation loss of life is ~0.0133 % at the rated hot spot: two decimals of a
    # percent would show most days as 0.01 or 0.
    "loss_of_life_pct": 6,
}
"""Columns whose values are much smaller than their unit's usual magnitude."""


def decimals(f: Field) -> int | None:
    """Decimals of column ``f``; None when it is not a double (nothing to round).

    Raises:
        KeyError: A double column with a unit missing from :data:`UNIT_DECIMALS` (a new
            unit must be added to the table, not shown unrounded).

    """
    if f.type is not FieldType.DOUBLE:
        return None
    if f.name in FIELD_DECIMALS:
        return FIELD_DECIMALS[f.name]
    try:
        return UNIT_DECIMALS[f.unit]
    except KeyError:
        raise KeyError(f"{f.name}: no precision for unit {f.unit!r} in UNIT_DECIMALS") from None


def rounded(value: float | None, places: int) -> float | None:
    """``value`` rounded to ``places`` decimals; None for None, NaN and ±infinity.

    JSON has no NaN or infinity: a value that is not a number is "no value", in JSON and
    CSV alike. ``-0.0`` becomes ``0.0`` (a rounded tiny negative is not a sign to show).
    """
    if value is None or not math.isfinite(value):
        return None
    return round(value, places) + 0.0


def roundings(fields: Sequence[Field]) -> list[tuple[str, int]]:
    """(column, decimals) of the double columns of ``fields``."""
    out = []
    for f in fields:
        d = decimals(f)
        if d is not None:
            out.append((f.name, d))
    return out
