import math

import pytest

from lakehouse.contracts.precision import UNIT_DECIMALS, decimals, rounded, roundings
from lakehouse.contracts.schema import Field, FieldType
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN, ADS_TRANSFORMER_DAILY, TABLES


def test_the_noise_of_the_issue_is_rounded_away() -> None:
    assert rounded(0.005000000000109139, UNIT_DECIMALS["kWh"]) == 0.005
    assert rounded(72.57000000000001, UNIT_DECIMALS["%"]) == 72.57
    assert rounded(229.99999999999997, UNIT_DECIMALS["V"]) == 230.0
    assert rounded(0.98765432, UNIT_DECIMALS[""]) == 0.9877


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_no_number_is_no_value(value: float | None) -> None:
    assert rounded(value, 3) is None


def test_a_tiny_negative_is_not_shown_as_minus_zero() -> None:
    v = rounded(-0.0001, 3)
    assert v == 0.0 and math.copysign(1.0, v) == 1.0  # type: ignore[arg-type]


def test_every_double_column_of_every_table_has_a_precision() -> None:
    # a new unit must be added to the table (decimals() raises), never shown unrounded
    for t in TABLES:
        for f in t.fields:
            d = decimals(f)
            assert (d is None) == (f.type is not FieldType.DOUBLE), (t.name, f.name)


def test_precision_follows_the_unit_with_named_exceptions() -> None:
    by_name = dict(roundings(ADS_METER_ENERGY_15MIN.fields))
    assert by_name == {"energy_kwh": 3, "register_last_kwh": 3}
    daily = dict(roundings(ADS_TRANSFORMER_DAILY.fields))
    assert daily["hot_spot_max_c"] == 1 and daily["loading_rate_pct"] == 2
    # a day's loss of life (~0.013 %) would be 0.01 at a percentage's two decimals
    assert daily["loss_of_life_pct"] == 6
    with pytest.raises(KeyError, match="furlong"):
        decimals(Field("x", FieldType.DOUBLE, "furlong"))
