"""Response models derived from the table contracts (never written by hand)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, create_model
from pydantic import Field as PydField

from lakehouse.contracts import FieldType, TableContract

_PY_TYPES: dict[FieldType, type] = {
    FieldType.STRING: str,
    FieldType.INT: int,
    FieldType.BIGINT: int,
    FieldType.DOUBLE: float,
    FieldType.BOOLEAN: bool,
    FieldType.TIMESTAMP: datetime,
}


_MODELS: dict[str, type[BaseModel]] = {}


def row_model(table: TableContract) -> type[BaseModel]:
    """A pydantic model of one row of ``table``, with units in the field descriptions."""
    if table.name in _MODELS:
        return _MODELS[table.name]
    fields: dict[str, Any] = {}
    for f in table.fields:
        desc = f"{f.description} [{f.unit}]" if f.unit else f.description
        fields[f.name] = (_PY_TYPES[f.type] | None, PydField(default=None, description=desc))
    model_name = "".join(part.title() for part in table.name.split("_")) + "Row"
    model = create_model(model_name, __doc__=table.description, **fields)
    _MODELS[table.name] = model
    return model


def decode_row(table: TableContract, raw: dict[str, str]) -> dict[str, Any]:
    """Turn a serving-copy hash (all strings; timestamps as epoch ms) into typed values."""
    out: dict[str, Any] = {}
    for f in table.fields:
        value = raw.get(f.name)
        if value is None or value == "":
            out[f.name] = None
        elif f.type is FieldType.TIMESTAMP:
            out[f.name] = datetime.fromtimestamp(int(value) / 1000, UTC)
        elif f.type in (FieldType.INT, FieldType.BIGINT):
            out[f.name] = int(value)
        elif f.type is FieldType.DOUBLE:
            out[f.name] = float(value)
        elif f.type is FieldType.BOOLEAN:
            out[f.name] = value.lower() == "true"
        else:
            out[f.name] = value
    return out
