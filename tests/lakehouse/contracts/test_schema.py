import pytest

from lakehouse.contracts import Field, FieldType, TableContract
from lakehouse.contracts.messages import METER_READING
from lakehouse.contracts.registry import all_topics, message, table
from lakehouse.contracts.tables import TABLES


def _good() -> dict:
    msg: dict = {}
    for f in METER_READING.fields:
        msg[f.name] = {
            FieldType.STRING: "MTR-1",
            FieldType.DOUBLE: 1.5,
            FieldType.INT: 60,
            FieldType.BIGINT: 3,
            FieldType.TIMESTAMP: 1_700_000_000_000,
            FieldType.BOOLEAN: True,
        }[f.type]
    return msg


def test_valid_message_passes() -> None:
    assert METER_READING.validate(_good()) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ts": None}, "missing_field:ts"),
        ({"ts": "1700000000000"}, "bad_type:ts"),
        ({"ts": 1.5}, "bad_type:ts"),
        ({"ts": True}, "bad_type:ts"),
        ({"energy_import_kwh": "1"}, "bad_type:energy_import_kwh"),
        ({"energy_import_kwh": float("nan")}, "bad_type:energy_import_kwh"),
        ({"device_id": ""}, "bad_type:device_id"),
        ({"device_id": 5}, "bad_type:device_id"),
    ],
)
def test_violations_name_the_field(change: dict, reason: str) -> None:
    assert METER_READING.validate({**_good(), **change}) == reason


def test_missing_key_and_non_object() -> None:
    msg = _good()
    del msg["device_id"]
    assert METER_READING.validate(msg) == "missing_field:device_id"
    assert METER_READING.validate([1, 2]) == "not_an_object"


def test_int_accepted_for_double() -> None:
    assert METER_READING.validate({**_good(), "energy_import_kwh": 3}) is None


def test_table_contract_rejects_unknown_key_column() -> None:
    with pytest.raises(ValueError, match="not a field"):
        TableContract("x", "ods", (Field("a", FieldType.STRING),), ("b",), "a")


def test_table_contract_rejects_duplicate_fields() -> None:
    f = Field("a", FieldType.STRING)
    with pytest.raises(ValueError, match="duplicate"):
        TableContract("x", "ods", (f, f), ("a",), "a")


def test_registry_lookups_and_topics() -> None:
    assert message("meter_reading") is METER_READING
    assert table("ods_meter_reading").layer == "ods"
    with pytest.raises(KeyError):
        table("nope")
    names = [t.name for t in all_topics()]
    assert METER_READING.topic in names and "quarantine" in names
    assert len(names) == len(set(names))


def test_every_table_named_after_its_layer() -> None:
    for t in TABLES:
        assert t.layer in {"ods", "dim", "dwd", "dws", "ads"}
        assert t.name.startswith(t.layer + "_")


def test_ods_carries_every_message_field() -> None:
    ods = table("ods_meter_reading")
    for f in METER_READING.fields:
        assert f.name in ods.field_names
